/** as2kit library entry. The CLI lives in ./cli and is not exported. */
export * from "./core/index.js";
