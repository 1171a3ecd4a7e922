export * from "./certificate.js";
export * from "./generate.js";
