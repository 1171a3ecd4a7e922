// Writes as2rc.schema.json (editor completion for .as2rc files) from the configuration schema.
// `npm run schema` after changing src/config/schema.ts; a test fails when the file is stale.
import { writeFileSync } from "node:fs";
import { configJsonSchema } from "../dist/config/schema.js";

writeFileSync(new URL("../as2rc.schema.json", import.meta.url), `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
