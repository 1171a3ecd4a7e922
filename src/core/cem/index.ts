export * from "./xml.js";
export * from "./package.js";
