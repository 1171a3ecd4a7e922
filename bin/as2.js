#!/usr/bin/env -S node --openssl-legacy-provider
// --openssl-legacy-provider lets partners that still use CAST5 or IDEA be served (as2-reference.md §19).
import { main } from "../dist/cli/main.js";
process.exitCode = await main(process.argv);
