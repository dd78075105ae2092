/**
 * IP addresses as the servers' per-source limits see them, runtime-free: parsing IPv4 and IPv6
 * text (with IPv4-mapped IPv6 folded to IPv4), address ranges in CIDR notation, the *source key*
 * that per-source quotas count by (an IPv4 address, or the /64 prefix of an IPv6 address: one
 * host usually owns a whole /64), and the client address behind trusted reverse proxies
 * (`X-Forwarded-For`).
 *
 * @example
 * ```ts
 * import { AddressSet, sourceKey } from "./net_address.ts";
 * const loopback = AddressSet.parse(["127.0.0.0/8", "::1"]);
 * console.assert(loopback.has("127.0.0.2") && loopback.has("::ffff:127.0.0.1"));
 * console.assert(sourceKey("2001:db8:1:2:3:4:5:6") === "2001:db8:1:2::/64");
 * console.assert(sourceKey("::ffff:192.0.2.7") === "192.0.2.7");
 * ```
 * @module
 */

/** A parsed address: 4 bytes (IPv4) or 16 bytes (IPv6, never an IPv4-mapped one). */
export type IpBytes = Uint8Array;

const V4 = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;

function parseV4(text: string): IpBytes | null {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => V4.test(p))) return null;
  return Uint8Array.from(parts, Number);
}

function parseV6(text: string): IpBytes | null {
  let s = text;
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  let tail: IpBytes | null = null;
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".", lastColon)) {
    tail = parseV4(s.slice(lastColon + 1));
    if (!tail) return null;
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(all[i])) return null;
    const v = parseInt(all[i], 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  }
  if (tail) out.set(tail, 12);
  return out;
}

/**
 * Parses an IPv4 or IPv6 address; an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as a dual-stack
 * socket reports IPv4 peers) becomes its IPv4 address, and an IPv6 zone (`%eth0`) is ignored.
 *
 * @param text the address, optionally in brackets (`[::1]`)
 * @returns 4 or 16 bytes, or null when `text` is not an address
 */
export function parseIp(text: string): IpBytes | null {
  if (typeof text !== "string" || text.length === 0 || text.length > 64) return null;
  const s = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (!s.includes(":")) return parseV4(s);
  const b = parseV6(s);
  if (!b) return null;
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  return mapped ? b.slice(12) : b;
}

/**
 * The key per-source limits count by: the IPv4 address, or the /64 prefix of an IPv6 address
 * (`2001:db8:1:2::/64`).
 *
 * @param address the peer's address as the runtime reports it
 * @returns the key, or null when the address does not parse
 */
export function sourceKey(address: string): string | null {
  const b = parseIp(address);
  if (!b) return null;
  if (b.length === 4) return b.join(".");
  const g: string[] = [];
  for (let i = 0; i < 8; i += 2) g.push(((b[i] << 8) | b[i + 1]).toString(16));
  return `${g.join(":")}::/64`;
}

interface Range {
  readonly bytes: IpBytes;
  readonly bits: number;
}

function inRange(r: Range, b: IpBytes): boolean {
  if (r.bytes.length !== b.length) return false;
  let bits = r.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((r.bytes[i] & mask) !== (b[i] & mask)) return false;
  }
  return true;
}

/** A set of address ranges (CIDR notation, or single addresses). */
export class AddressSet {
  readonly #ranges: readonly Range[];

  private constructor(ranges: readonly Range[]) {
    this.#ranges = ranges;
  }

  /** The empty set. */
  static readonly EMPTY: AddressSet = new AddressSet([]);

  /**
   * Parses a list of ranges: `192.0.2.0/24`, `2001:db8::/32`, or a single address (a /32 or
   * /128). An IPv4-mapped IPv6 range is taken as the IPv4 range.
   *
   * @param entries the ranges
   * @param what the setting's name, for the error
   * @returns the set
   * @throws {RangeError} naming the entry that is not an address or a range
   */
  static parse(entries: readonly string[], what = "address list"): AddressSet {
    const ranges: Range[] = [];
    for (const e of entries) {
      const m = /^([^/\s]+)(?:\/([0-9]{1,3}))?$/.exec(e);
      const raw = m ? parseIp(m[1]) : null;
      if (!m || !raw) {
        throw new RangeError(`${what}: expected an IP address or a CIDR range, got ${e}`);
      }
      const full = raw.length * 8;
      let bits = m[2] === undefined ? full : Number(m[2]);
      if (m[1].includes(":") && raw.length === 4 && m[2] !== undefined) bits -= 96;
      if (bits < 0 || bits > full) {
        throw new RangeError(`${what}: expected a prefix length 0..${full}, got ${e}`);
      }
      ranges.push({ bytes: raw, bits });
    }
    return new AddressSet(ranges);
  }

  /** Whether the set has no range. */
  get empty(): boolean {
    return this.#ranges.length === 0;
  }

  /**
   * Whether an address is in one of the ranges.
   *
   * @param address an address as text (unparsable: false)
   * @returns true when some range contains it
   */
  has(address: string): boolean {
    if (this.#ranges.length === 0) return false;
    const b = parseIp(address);
    return b !== null && this.#ranges.some((r) => inRange(r, b));
  }
}

/**
 * The client's address of a request: the peer's, unless the peer is a trusted proxy, in which
 * case the right-most address of `X-Forwarded-For` that is not itself a trusted proxy (the
 * left-most entries are whatever the client wrote).
 *
 * @param peer the connection's peer address
 * @param forwardedFor the `X-Forwarded-For` header (null when absent)
 * @param trusted the trusted proxies
 * @returns the client's address (the peer's when the header is absent or unusable)
 */
export function clientAddress(
  peer: string,
  forwardedFor: string | null,
  trusted: AddressSet,
): string {
  if (forwardedFor === null || trusted.empty || !trusted.has(peer)) return peer;
  const hops = forwardedFor.split(",");
  for (let i = hops.length - 1; i >= 0 && i >= hops.length - 32; i--) {
    const hop = hops[i].trim();
    if (parseIp(hop) === null) return peer;
    if (!trusted.has(hop)) return hop;
  }
  return peer;
}
