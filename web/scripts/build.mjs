// Builds the dashboard into web/dist, which agentwire serves (GET / → index.html, GET /ui/<file> → the rest):
//   dist/client/*.js  the TypeScript client, compiled from clients/ts/src with this package's tsc
//   dist/*.js         the dashboard (src/*.ts); it imports ./client/index.js, so every module resolves under /ui/
//   dist/index.html, dist/style.css, dist/favicon.svg
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const web = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(web, "dist");
const clientProject = resolve(web, "..", "clients", "ts", "tsconfig.json");
const tsc = join(web, "node_modules", "typescript", "bin", "tsc");
if (!existsSync(tsc)) {
  console.error("web: typescript is not installed: run `npm ci` in web/ first");
  process.exit(1);
}

function run(args) {
  execFileSync(process.execPath, [tsc, ...args], { cwd: web, stdio: "inherit" });
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

// 1. The client, into dist/client (declarations too: the dashboard's compile finds its types there).
run(["-p", clientProject, "--outDir", join(dist, "client"), "--sourceMap", "false", "--declarationMap", "false"]);
// 2. The dashboard.
run(["-p", join(web, "tsconfig.json")]);
// 3. The static files.
for (const file of ["index.html", "style.css", "favicon.svg"]) copyFileSync(join(web, file), join(dist, file));
console.log(`web: built ${dist}`);
