// Moved to testing/openssl.ts; this re-export is removed once nothing imports it.
export * from "../../testing/openssl.ts";
