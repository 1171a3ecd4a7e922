export * from "./disposition.js";
export * from "./options.js";
export * from "./mdn.js";
