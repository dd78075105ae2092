/**
 * Plain big-integer helpers over the built-in `bigint`.
 *
 * Everything here is variable-time: none of these functions may take a secret whose timing
 * matters (see `SECURITY.md`, constant-time policy). They are used on public values and on
 * secrets only where the operation's timing does not depend on the secret's value in a way an
 * observer can exploit (for example, a modular inverse of a uniformly random blinded value).
 * @module
 */
import { fromHex, toHex } from "../bytes.ts";

/** Number of bits of |x| (0 for 0). */
export function bitLength(x: bigint): number {
  if (x < 0n) x = -x;
  if (x === 0n) return 0;
  // toString(16) is linear and fast in V8 and SpiderMonkey.
  const hex = x.toString(16);
  return (hex.length - 1) * 4 + (32 - Math.clz32(parseInt(hex[0], 16)));
}

/** Number of bytes needed for the big-endian magnitude of |x| (0 for 0). */
export function byteLength(x: bigint): number {
  return Math.ceil(bitLength(x) / 8);
}

/** Non-negative residue of `a` modulo `m` (m > 0). */
export function mod(a: bigint, m: bigint): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

/** Absolute value. */
export function abs(x: bigint): bigint {
  return x < 0n ? -x : x;
}

/** Greatest common divisor of |a| and |b|. */
export function gcd(a: bigint, b: bigint): bigint {
  a = abs(a);
  b = abs(b);
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** Extended Euclid: returns [g, x, y] with a*x + b*y = g = gcd(a, b), for a, b >= 0. */
export function egcd(a: bigint, b: bigint): [bigint, bigint, bigint] {
  let [oldR, r] = [a, b];
  let [oldS, s] = [1n, 0n];
  let [oldT, t] = [0n, 1n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
    [oldT, t] = [t, oldT - q * t];
  }
  return [oldR, oldS, oldT];
}

/**
 * Inverse of `a` modulo `m`.
 * @throws {RangeError} when gcd(a, m) != 1 or m < 2.
 */
export function modInv(a: bigint, m: bigint): bigint {
  if (m < 2n) throw new RangeError(`modInv: expected modulus >= 2, got ${bitLength(m)}-bit value`);
  const [g, x] = egcd(mod(a, m), m);
  if (g !== 1n) throw new RangeError("modInv: value is not invertible modulo m");
  return mod(x, m);
}

/** Whether gcd(a, m) == 1 and 0 < a < m: the test for membership in Z*_m. */
export function isUnit(a: bigint, m: bigint): boolean {
  return a > 0n && a < m && gcd(a, m) === 1n;
}

/**
 * Jacobi symbol (a / n) for odd n > 0. Returns -1, 0 or 1.
 * @throws {RangeError} when n is even or not positive.
 */
export function jacobi(a: bigint, n: bigint): -1 | 0 | 1 {
  if (n <= 0n || (n & 1n) === 0n) throw new RangeError("jacobi: expected an odd positive modulus");
  a = mod(a, n);
  let result: -1 | 1 = 1;
  while (a !== 0n) {
    while ((a & 1n) === 0n) {
      a >>= 1n;
      const r = n & 7n;
      if (r === 3n || r === 5n) result = result === 1 ? -1 : 1;
    }
    [a, n] = [n, a];
    if ((a & 3n) === 3n && (n & 3n) === 3n) result = result === 1 ? -1 : 1;
    a %= n;
  }
  return n === 1n ? result : 0;
}

/**
 * Chinese remaindering for two coprime moduli: the x in [0, p*q) with x = a mod p, x = b mod q.
 * `pInvModQ` is p^-1 mod q (precompute it for repeated use).
 */
export function crt2(a: bigint, p: bigint, b: bigint, q: bigint, pInvModQ: bigint): bigint {
  // x = a + p * ((b - a) * p^-1 mod q)   (Garner)
  return a + p * mod((b - a) * pInvModQ, q);
}

/** Integer square root: floor(sqrt(n)) for n >= 0. */
export function isqrt(n: bigint): bigint {
  if (n < 0n) throw new RangeError("isqrt: negative input");
  if (n < 2n) return n;
  let x = 1n << BigInt(Math.ceil(bitLength(n) / 2));
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

/** Big-endian magnitude of x >= 0, left-padded to `length` bytes when given. */
export function toBytesBE(x: bigint, length?: number): Uint8Array {
  if (x < 0n) throw new RangeError("toBytesBE: negative value");
  let hex = x.toString(16);
  if (hex.length % 2 === 1) hex = "0" + hex;
  if (x === 0n) hex = "";
  const n = hex.length / 2;
  const len = length ?? n;
  if (n > len) throw new RangeError(`toBytesBE: value needs ${n} bytes, expected at most ${len}`);
  const out = new Uint8Array(len);
  out.set(fromHex(hex), len - n);
  return out;
}

/** Integer from big-endian bytes. */
export function fromBytesBE(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt("0x" + toHex(bytes));
}
