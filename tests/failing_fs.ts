// Moved to testing/failing_fs.ts; this re-export is removed once nothing imports it.
export * from "../testing/failing_fs.ts";
