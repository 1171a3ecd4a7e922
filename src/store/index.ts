export * from "./records.js";
export * from "./job-store.js";
export * from "./message-index.js";
export * from "./received-index.js";
export * from "./atomic-file.js";
