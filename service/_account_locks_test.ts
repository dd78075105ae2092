/**
 * The exclusion between the sessions of one account: a key change excludes every other session
 * of its account, signing sessions exclude a key change but not each other, other accounts are
 * unaffected, and a release is idempotent.
 * @module
 */
import "../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { ACCOUNT_BUSY, AccountLocks } from "./_account_locks.ts";

function busy(f: () => unknown): ConnectError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ConnectError);
    assert.equal(e.code, Code.Aborted);
    assert.ok(e.rawMessage.startsWith(`${ACCOUNT_BUSY}: `), e.rawMessage);
    return e;
  }
  assert.fail("expected ABORTED account-busy");
}

test("signing sessions share an account and exclude a key change until the last one ends", () => {
  const locks = new AccountLocks();
  const a = locks.shared("alice");
  const b = locks.shared("alice");
  assert.match(busy(() => locks.exclusive("alice")).rawMessage, /busy with another session/);
  a();
  a(); // released twice: counted once
  busy(() => locks.exclusive("alice"));
  b();
  const change = locks.exclusive("alice");
  change();
  locks.exclusive("alice")();
});

test("a key change excludes signing and another key change of its account, not other accounts", () => {
  const locks = new AccountLocks();
  const change = locks.exclusive("alice");
  assert.match(busy(() => locks.shared("alice")).rawMessage, /being changed/);
  busy(() => locks.exclusive("alice"));
  locks.shared("bob")();
  locks.exclusive("carol")();
  const other = locks.exclusive("bob");
  change();
  change(); // released twice: must not release bob's or a later key change
  const again = locks.exclusive("alice");
  change();
  busy(() => locks.shared("alice"));
  again();
  other();
  locks.shared("alice")();
});
