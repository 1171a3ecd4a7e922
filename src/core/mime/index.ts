export * from "./headers.js";
export * from "./multipart.js";
export * from "./entity.js";
export * from "./encoding.js";
export * from "./capture.js";
export * from "./rfc2231.js";
export * from "./related.js";
