export * from "./records.js";
export * from "./job-store.js";
