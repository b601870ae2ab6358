// Runs after every `npm ci` / `npm install` (the root package's postinstall) and repairs known defects in
// pinned dependencies that have no fixed release yet. Each patch names the exact version it was written for and
// fails the install when that version or the code it rewrites changes, so an upgrade forces a second look
// instead of silently shipping the defect again. Running it twice changes nothing.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// Each patch leaves its own marker in the files it rewrote, so a second run knows what is already done.
const marker = "/* local-e-grocery: guarded */";
const reserveMarker = "/* local-e-grocery: reserves BEGIN */";
const queueMarker = "/* local-e-grocery: queue from its head */";
const lostSessionMarker = "/* local-e-grocery: nothing runs on a lost session */";

const patches = [
  {
    // postgres.js defers writes under 1 KiB to a setImmediate. When the socket closes first, `closed()` nulls
    // the socket and cancels the immediate without forgetting it, so (a) a statement sent later on a reserved
    // connection (every transaction) schedules a write that dereferences the null socket and throws outside any
    // promise, killing the process (porsager/postgres#1208, #1154), and (b) the stale timer id stops the
    // connection from ever flushing again. The repair forgets the pending write on teardown and, when a write
    // finds no socket, rejects the waiting statements with CONNECTION_CLOSED like any other lost connection.
    package: "postgres",
    version: "3.4.9",
    marker,
    files: ["src/connection.js", "cjs/src/connection.js", "cf/src/connection.js"],
    edits: [
      {
        find: "  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)",
        replace:
          "  function nextWrite(fn) {\n" +
          `    ${marker}\n` +
          "    if (!socket) {\n" +
          "      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n" +
          "      chunk = nextWriteTimer = null\n" +
          "      error(Errors.connection('CONNECTION_CLOSED', options))\n" +
          "      return false\n" +
          "    }\n" +
          "    const x = socket.write(chunk, fn)",
        count: 1,
      },
      {
        find: "    clearImmediate(nextWriteTimer)\n",
        replace: "    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n",
        count: 2,
      },
    ],
  },
  {
    // sql.begin() reserves its connection in an `onexecute` hook that `execute()` calls last in a chain of
    // conditions. When BEGIN's write meets socket back-pressure or fills the connection's pipeline, the chain
    // stops before the hook: PostgreSQL is in a transaction, the driver does not know, the statement fails with
    // UNSAFE_TRANSACTION, and other queries of the pool may run on that connection inside the open transaction
    // (porsager/postgres#823, #1189, #1210; fix proposed in #1207 and #1218). Once every query is prepared,
    // connections pipeline more and the benchmark's RefreshToken load hit it about once per 4,000 calls. The
    // repair calls the hook whenever BEGIN was written, and stops a socket's drain event from handing a
    // reserved connection back to the pool.
    package: "postgres",
    version: "3.4.9",
    marker: reserveMarker,
    files: ["src/connection.js", "cjs/src/connection.js", "cf/src/connection.js"],
    edits: [
      {
        find:
          "      build(q)\n" +
          "      return write(toBuffer(q))\n" +
          "        && !q.describeFirst\n" +
          "        && !q.cursorFn\n" +
          "        && sent.length < max_pipeline\n" +
          "        && (!q.options.onexecute || q.options.onexecute(connection))\n",
        replace:
          "      build(q)\n" +
          `      ${reserveMarker}\n` +
          "      const written = write(toBuffer(q))\n" +
          "      if (q.options.onexecute) {\n" +
          "        q.options.onexecute(connection)\n" +
          "        return false\n" +
          "      }\n" +
          "      return written\n" +
          "        && !q.describeFirst\n" +
          "        && !q.cursorFn\n" +
          "        && sent.length < max_pipeline\n",
        count: 1,
      },
      {
        find: "    !query && onopen(connection)\n",
        replace: "    !query && !connection.reserved && onopen(connection)\n",
        count: 1,
      },
    ],
  },
  {
    // A transaction's callback goes on issuing statements after its connection was lost (the transaction itself
    // is already rejected). On the dead connection each such statement, the transaction's own COMMIT or
    // ROLLBACK included, used to wait in the deferred write; the pool meanwhile reconnects that connection for
    // the next caller, and when the write found no socket it failed everything on the connection, the new
    // session's first statement too: one call after every lost connection answered UNAVAILABLE for nothing.
    // The repair fails a statement at once when its connection has no socket, so nothing of a lost session
    // reaches the next one. `true` keeps the pool from moving the closed connection out of its queue.
    package: "postgres",
    version: "3.4.9",
    marker: lostSessionMarker,
    files: ["src/connection.js", "cjs/src/connection.js", "cf/src/connection.js"],
    edits: [
      {
        find: "  function execute(q) {\n    if (terminated)\n      return queryError(q, Errors.connection('CONNECTION_DESTROYED', options))\n",
        replace:
          "  function execute(q) {\n" +
          "    if (terminated)\n" +
          "      return queryError(q, Errors.connection('CONNECTION_DESTROYED', options))\n" +
          `    ${lostSessionMarker}\n` +
          "    if (!socket) {\n" +
          "      queryError(q, Errors.connection('CONNECTION_CLOSED', options))\n" +
          "      return true\n" +
          "    }\n",
        count: 1,
      },
    ],
  },
  {
    // The pool's connection queues are arrays that shift() by leaving a hole and are cleared only when they run
    // empty, which under steady load they never do: the busy queue gains one hole per pipelined query, and every
    // move of a connection between queues runs indexOf over all of them (a miss, most of the time, for the
    // connection just shifted out). Cost per query grows with the queries since the queue was last empty: 136 k
    // `select 1` from 64 callers on 10 connections grew the array to 132 k entries, and the loop ran at 32–33 k
    // queries/s on one core against 79–80 k with the repair. The repair searches only the live part and
    // compacts the array once its holes are the larger half.
    package: "postgres",
    version: "3.4.9",
    marker: queueMarker,
    files: ["src/queue.js", "cjs/src/queue.js", "cf/src/queue.js"],
    edits: [
      {
        find: "    remove: (x) => {\n      const index = xs.indexOf(x)\n      return index === -1\n        ? null\n        : (xs.splice(index, 1), x)\n",
        replace:
          "    remove: (x) => {\n" +
          `      ${queueMarker}\n` +
          "      const at = xs.indexOf(x, index)\n" +
          "      return at === -1\n" +
          "        ? null\n" +
          "        : (xs.splice(at, 1), x)\n",
        count: 1,
      },
      {
        find: "      } else {\n        xs[index - 1] = undefined\n      }\n",
        replace:
          "      } else if (index >= 1024 && index * 2 >= xs.length) {\n" +
          "        xs = xs.slice(index)\n" +
          "        index = 0\n" +
          "      } else {\n" +
          "        xs[index - 1] = undefined\n" +
          "      }\n",
        count: 1,
      },
    ],
  },
];

let failed = false;
for (const patch of patches) {
  const dir = join(root, "node_modules", patch.package);
  if (!existsSync(dir)) continue; // not installed (e.g. a partial install): nothing to repair
  const { version } = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  if (version !== patch.version) {
    console.error(
      `patch-dependencies: ${patch.package} is ${version}, the patch was written for ${patch.version}; ` +
        `check whether ${version} fixes the defect and update scripts/patch-dependencies.mjs`,
    );
    failed = true;
    continue;
  }
  for (const file of patch.files) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    let text = readFileSync(path, "utf8");
    if (text.includes(patch.marker)) continue;
    for (const edit of patch.edits) {
      const found = text.split(edit.find).length - 1;
      if (found !== edit.count) {
        console.error(
          `patch-dependencies: ${patch.package}/${file}: expected ${edit.count} of ${JSON.stringify(edit.find)}, found ${found}`,
        );
        failed = true;
        continue;
      }
      text = text.replaceAll(edit.find, edit.replace);
    }
    if (!failed) writeFileSync(path, text);
  }
}
if (failed) process.exit(1);
