import { test } from "node:test";
import assert from "node:assert/strict";
import { createServiceMetrics } from "./metrics.ts";

test("the presignature pool's counters are on the metrics page", () => {
  const m = createServiceMetrics({});
  assert.match(m.render(), /^sign_service_presignatures 0$/m, "zero before a pool is watched");
  let held = 3;
  m.watchPresignatures(() => ({ held, added: 7, taken: 4, evicted: 0, expired: 1 }));
  held = 2; // read at render time
  const page = m.render();
  assert.match(page, /^# TYPE sign_service_presignatures gauge$/m);
  assert.match(page, /^sign_service_presignatures 2$/m);
  assert.match(page, /^# TYPE sign_service_presignatures_total counter$/m);
  for (const [event, v] of [["made", 7], ["used", 4], ["evicted", 0], ["expired", 1]]) {
    assert.match(
      page,
      new RegExp(`^sign_service_presignatures_total\\{event="${event}"\\} ${v}$`, "m"),
    );
  }
});
