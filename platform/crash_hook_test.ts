import { test } from "node:test";
import assert from "node:assert/strict";
import { crashHookFrom } from "./crash_hook.ts";

test("no crash point unless one is configured", () => {
  assert.equal(crashHookFrom(undefined), undefined);
  assert.equal(crashHookFrom(""), undefined);
  assert.equal(typeof crashHookFrom("refresh:after-promote"), "function");
  assert.equal(typeof crashHookFrom("keystore:before-rename#2"), "function");
});

test("an unknown crash point or a bad count refuses to start", () => {
  for (
    const spec of [
      "refresh",
      "refresh:after-nothing",
      "sign:after-promote",
      "keystore:before-rename#0",
      "keystore:before-rename#x",
      "keystore:before-rename#12345",
      " refresh:after-promote",
      "refresh:after-promote,keygen:after-promote",
    ]
  ) {
    assert.throws(() => crashHookFrom(spec), RangeError, spec);
  }
});

test("a hook fires only at its point (other points pass through)", () => {
  const hook = crashHookFrom("keygen:after-promote#2")!;
  // Other points and the first hit of the armed one return (the second would SIGKILL).
  hook("refresh:after-promote");
  hook("keygen:after-promote");
  hook("keystore:after-rename");
});
