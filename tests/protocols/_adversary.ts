// Moved to testing/adversary.ts; this re-export is removed once nothing imports it.
export * from "../../testing/adversary.ts";
