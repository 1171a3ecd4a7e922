export * from "./connect.js";
export * from "./post.js";
export * from "./probe.js";
export * from "./keep-alive.js";
