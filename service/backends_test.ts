/**
 * The sign-service and its exponentiation backends: started under Deno without the FFI
 * permission (so the secret slot falls back to BigInt, not constant-time), it refuses to start
 * unless `compute.allow_variable_time_secrets` is set, and with it set it starts and logs the
 * backends it uses. Child processes, since the backends are chosen per process.
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { DENO, PROCESS_WAIT_MS, ROOT } from "../testing/processes.ts";

/** Runs service/main.ts under Deno without --allow-ffi until it exits or logs `listening`. */
function runWithoutFfi(
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  const dir = mkdtempSync(join(tmpdir(), "svc-backends-"));
  writeFileSync(join(dir, "callers.yaml"), "callers: []\n");
  const p = spawn(DENO, [
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-net",
    "--allow-sys",
    "--no-check",
    "--unstable-no-legacy-abort",
    "service/main.ts",
  ], {
    cwd: ROOT,
    env: {
      ...process.env as Record<string, string>,
      NO_COLOR: "1",
      WALLET_MPC_SERVICE__AUTH__TOKENS_FILE: join(dir, "callers.yaml"),
      WALLET_MPC_SERVICE__KEY_STORE__ALLOW_PLAINTEXT: "true",
      WALLET_MPC_SERVICE__MPC__KEY_SHARE_FILE: join(dir, "shares.json"),
      WALLET_MPC_SERVICE__SERVER__PORT: "0",
      WALLET_MPC_SERVICE__SERVER__WEB_PORT: "0",
      WALLET_MPC_SERVICE__COMPUTE__WORKERS: "1",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(
        new Error(`the service neither exited nor listened in ${PROCESS_WAIT_MS} ms:\n${output}`),
      );
    }, PROCESS_WAIT_MS);
    const read = (b: Uint8Array) => {
      output += new TextDecoder().decode(b);
      if (/"msg":"listening"/.test(output)) p.kill("SIGTERM");
    };
    p.stdout.on("data", read);
    p.stderr.on("data", read);
    p.once("close", (code) => {
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, output });
    });
  });
}

/** The JSON log lines of an output. */
function lines(output: string): Record<string, unknown>[] {
  return output.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

const skip = typeof Deno === "undefined" ? "Deno only (Node's secret backend is OpenSSL)" : false;

test("the service refuses a variable-time secret backend by default (Deno without --allow-ffi)", {
  skip,
}, async () => {
  const r = await runWithoutFfi({});
  assert.equal(r.code, 1, r.output);
  const failure = lines(r.output).find((l) => l.msg === "sign-service failed to start");
  assert.ok(failure, r.output);
  assert.equal(failure.code, "contradictory");
  assert.match(
    String(failure.message),
    /^compute\.allow_variable_time_secrets: the secret exponentiation backend "bigint-fixed-window" is not constant-time/,
  );
  assert.doesNotMatch(r.output, /"msg":"listening"/);
});

test(
  "with compute.allow_variable_time_secrets the service starts on BigInt and logs its backends",
  {
    skip,
  },
  async () => {
    const r = await runWithoutFfi({
      WALLET_MPC_SERVICE__COMPUTE__ALLOW_VARIABLE_TIME_SECRETS: "true",
    });
    assert.match(r.output, /"msg":"listening"/, r.output);
    assert.match(r.output, /"level":"warn","msg":"OpenSSL through FFI is not available/);
    const line = r.output.split("\n").find((l) => l.includes('"msg":"exponentiation backends"'));
    assert.ok(line, r.output);
    const fields = JSON.parse(line);
    assert.equal(fields.secret, "bigint-fixed-window");
    assert.equal(fields.secret_constant_time, false);
  },
);
