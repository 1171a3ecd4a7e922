export * from "./records.js";
export * from "./job-store.js";
export * from "./message-index.js";
export * from "./received-index.js";
export * from "./atomic-file.js";
export * from "./job-index.js";
export * from "./lock-file.js";
export * from "./job-query.js";
