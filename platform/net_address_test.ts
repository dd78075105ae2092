import { test } from "node:test";
import assert from "node:assert/strict";
import { AddressSet, clientAddress, parseIp, sourceKey } from "./net_address.ts";

test("parseIp reads IPv4, IPv6 (compressed, embedded IPv4, zone, brackets), folds mapped IPv4", () => {
  assert.deepEqual([...parseIp("192.0.2.7")!], [192, 0, 2, 7]);
  assert.deepEqual([...parseIp("::ffff:192.0.2.7")!], [192, 0, 2, 7]);
  assert.deepEqual([...parseIp("::FFFF:c000:0207")!], [192, 0, 2, 7]);
  assert.equal(parseIp("::1")!.length, 16);
  assert.equal(parseIp("[2001:db8::1]")!.length, 16);
  assert.equal(parseIp("fe80::1%eth0")![15], 1);
  assert.deepEqual(parseIp("64:ff9b::192.0.2.1")!.slice(12), Uint8Array.of(192, 0, 2, 1));
  assert.deepEqual(parseIp("1:2:3:4:5:6:7:8")!.slice(14), Uint8Array.of(0, 8));
});

test("parseIp rejects what is not an address", () => {
  for (
    const bad of [
      "",
      "localhost",
      "256.0.0.1",
      "1.2.3",
      "1.2.3.4.5",
      "01.2.3.4",
      "1.2.3.-4",
      ":::",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      "12345::",
      "g::1",
      "::ffff:1.2.3",
      "1".repeat(70),
      "1.2.3.4/32",
    ]
  ) {
    assert.equal(parseIp(bad), null, bad);
  }
});

test("sourceKey is the IPv4 address or the IPv6 /64 prefix", () => {
  assert.equal(sourceKey("203.0.113.9"), "203.0.113.9");
  assert.equal(sourceKey("::ffff:203.0.113.9"), "203.0.113.9");
  assert.equal(sourceKey("2001:db8:a:b:1:2:3:4"), "2001:db8:a:b::/64");
  assert.equal(sourceKey("2001:db8:a:b:ffff::9"), "2001:db8:a:b::/64");
  assert.equal(sourceKey("not an address"), null);
});

test("AddressSet matches CIDR ranges of both families and refuses bad entries", () => {
  const s = AddressSet.parse(["127.0.0.0/8", "::1", "2001:db8::/32", "::ffff:10.0.0.0/104"]);
  assert.ok(s.has("127.255.0.1"));
  assert.ok(s.has("::ffff:127.0.0.1"));
  assert.ok(s.has("::1"));
  assert.ok(s.has("2001:db8:ffff::1"));
  assert.ok(s.has("10.9.9.9"));
  assert.ok(!s.has("128.0.0.1"));
  assert.ok(!s.has("::2"));
  assert.ok(!s.has("2001:db9::1"));
  assert.ok(!s.has("garbage"));
  assert.ok(AddressSet.parse(["0.0.0.0/0"]).has("8.8.8.8"));
  assert.ok(!AddressSet.EMPTY.has("127.0.0.1"));
  for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/", "x/8", "10.0.0.0/8/8", " 10.0.0.1"]) {
    assert.throws(() => AddressSet.parse([bad], "limits.x"), /limits\.x: expected/, bad);
  }
});

test("clientAddress trusts X-Forwarded-For only from trusted proxies, right to left", () => {
  const proxies = AddressSet.parse(["10.0.0.0/8"]);
  assert.equal(clientAddress("10.0.0.5", "198.51.100.1, 10.0.0.9", proxies), "198.51.100.1");
  assert.equal(clientAddress("10.0.0.5", "6.6.6.6, 198.51.100.1", proxies), "198.51.100.1");
  assert.equal(clientAddress("203.0.113.1", "198.51.100.1", proxies), "203.0.113.1");
  assert.equal(clientAddress("10.0.0.5", null, proxies), "10.0.0.5");
  assert.equal(clientAddress("10.0.0.5", "10.0.0.7", proxies), "10.0.0.5");
  assert.equal(clientAddress("10.0.0.5", "junk, 198.51.100.1", proxies), "198.51.100.1");
  assert.equal(clientAddress("10.0.0.5", "198.51.100.1, junk", proxies), "10.0.0.5");
  assert.equal(clientAddress("10.0.0.5", "198.51.100.1", AddressSet.EMPTY), "10.0.0.5");
});
