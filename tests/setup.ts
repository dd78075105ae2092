// Moved to testing/setup.ts; this re-export is removed once nothing imports it.
export * from "../testing/setup.ts";
