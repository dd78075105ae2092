// Moved to testing/accounts.ts; this re-export is removed once nothing imports it.
export * from "../../testing/accounts.ts";
