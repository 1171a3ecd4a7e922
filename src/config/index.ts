export * from "./schema.js";
export * from "./validate.js";
export * from "./load.js";
export * from "./keys.js";
