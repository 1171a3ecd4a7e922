export * from "./byte-reader.js";
export * from "./reader.js";
export * from "./writer.js";
