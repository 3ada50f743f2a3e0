// The fixture system's one service: answers on the host's service port with what runs.
const http = require('http');
const fs = require('fs');
const [address, port, delaySeconds] = process.argv.slice(2);
const system = process.argv[1].replace(/\/share\/service\.js$/, '');
const body = JSON.stringify({
  system,
  version: fs.readFileSync(`${system}/nixos-version`, 'utf8').trim(),
  terraform: JSON.parse(fs.readFileSync(`${system}/etc/terraform.json`, 'utf8')),
});
setTimeout(() => {
  http
    .createServer((req, res) => {
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'application/json' });
      res.end(body);
    })
    .listen(Number(port), address);
}, Number(delaySeconds) * 1000);
