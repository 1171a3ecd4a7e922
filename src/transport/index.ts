export * from "./connect.js";
export * from "./post.js";
