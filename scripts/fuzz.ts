/**
 * npm run fuzz -- [--target <name>[,<name>...]|all] [--seconds <n>] [--iterations <n>] [--seed <n>] [--timeout <ms>] [--no-minimise] [--no-corpus]
 * Fuzzes the core's parsers and checks that every failure is an As2Error (test/fuzz/README.md).
 */
import "../test/fuzz/lib/cli.js";
