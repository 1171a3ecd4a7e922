// A loopback HTTP sink for the send benchmark: drains each request, counts its bytes, answers 200.
// Prints its port on stdout; runs until killed. A separate process, so the bench's own
// synchronous timing does not block it.
import * as http from "node:http";
const server = http.createServer((req, res) => {
  let n = 0;
  req.on("data", (c) => { n += c.length; });
  req.on("end", () => { res.writeHead(200, { "Content-Type": "text/plain" }); res.end(`received ${n} bytes\n`); process.stderr.write(`sink: ${n} bytes\n`); });
});
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`));
