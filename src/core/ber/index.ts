export * from "./byte-reader.js";
export * from "./reader.js";
export * from "./writer.js";
export * from "./asn1.js";
