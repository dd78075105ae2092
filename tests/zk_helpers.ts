// Moved to testing/zk_helpers.ts; this re-export is removed once nothing imports it.
export * from "../testing/zk_helpers.ts";
