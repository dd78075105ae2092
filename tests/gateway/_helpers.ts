// Moved to testing/processes.ts; this re-export is removed once nothing imports it.
export * from "../../testing/processes.ts";
