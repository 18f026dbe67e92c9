#!/usr/bin/env bash
# tests/override/real_programs.sh <libnalloc_malloc.so> <work-dir> [c++ compiler]: programs we did
# not write, from Debian's packages, under the override library (issue 10, item 4: "with no route
# it must be invisible"). Each runs four ways and must print the same bytes each time:
#   plain
#   LD_PRELOAD=libnalloc_malloc.so                          no route: glibc's allocator
#   LD_PRELOAD=... NALLOC_ROUTE=scratch:1g                  every allocation from one arena, and
#                                                           no fallback line at exit
#   LD_PRELOAD=... NALLOC_ROUTE=scratch:64k                 too small: requests fall back, and the
#                                                           line at exit says how many
# The programs: python3 on a script that works its allocator (dicts, lists, big strings, json, the
# cycle collector), once with pymalloc and once with PYTHONMALLOC=malloc (every object through
# malloc); sqlite3 on a scripted workload (inserts, indexes, joins, aggregates, json) in a file
# database; a C++ program compiled here (vector, map, unordered_map, string, shared_ptr,
# exceptions, over-aligned new, four std::threads). A program that is not installed is skipped
# (exit status 77 at the end when any was, after the others ran); nothing is installed here
# (scripts/test.sh installs sqlite3).
set -uo pipefail
lib=$1
work=$2
cxx=${3:-c++}
rm -rf "$work"
mkdir -p "$work"
failed=0
skipped=0
fail() { echo "FAIL: $*" >&2; failed=1; }

# check <name> <command...>: run the command four ways in $work/<name>.*, comparing outputs.
check() {
  local name=$1
  shift
  local base=$work/$name
  if ! "$@" >"$base.plain.out" 2>"$base.plain.err"; then
    fail "$name: the plain run failed: $(tail -n 3 "$base.plain.err")"
    return
  fi
  local start=$SECONDS
  LD_PRELOAD=$lib "$@" >"$base.preload.out" 2>"$base.preload.err" ||
    fail "$name: under LD_PRELOAD: exit status $?: $(tail -n 3 "$base.preload.err")"
  cmp -s "$base.plain.out" "$base.preload.out" || fail "$name: under LD_PRELOAD: output differs"
  cmp -s "$base.plain.err" "$base.preload.err" || fail "$name: under LD_PRELOAD: stderr differs"

  NALLOC_ROUTE=scratch:1g LD_PRELOAD=$lib "$@" >"$base.routed.out" 2>"$base.routed.err" ||
    fail "$name: NALLOC_ROUTE=scratch:1g: exit status $?: $(tail -n 3 "$base.routed.err")"
  cmp -s "$base.plain.out" "$base.routed.out" || fail "$name: NALLOC_ROUTE=scratch:1g: output differs"
  cmp -s "$base.plain.err" "$base.routed.err" ||
    fail "$name: NALLOC_ROUTE=scratch:1g: stderr differs: $(diff "$base.plain.err" "$base.routed.err" | head -n 5)"

  NALLOC_ROUTE=scratch:64k LD_PRELOAD=$lib "$@" >"$base.small.out" 2>"$base.small.err" ||
    fail "$name: NALLOC_ROUTE=scratch:64k: exit status $?: $(tail -n 3 "$base.small.err")"
  cmp -s "$base.plain.out" "$base.small.out" || fail "$name: NALLOC_ROUTE=scratch:64k: output differs"
  local line
  # (every process of the command says it: a shell's line comes after its children's)
  line=$(grep -m 1 '^nalloc: NALLOC_ROUTE=scratch:64k: [0-9]* allocations* did not fit in the arena and came from the system allocator' "$base.small.err")
  [ -n "$line" ] || fail "$name: NALLOC_ROUTE=scratch:64k: no fallback line at exit"
  { grep -v '^nalloc: ' "$base.small.err" || true; } | cmp -s "$base.plain.err" - ||
    fail "$name: NALLOC_ROUTE=scratch:64k: stderr differs beyond the fallback line"
  echo "ok: $name: $(wc -l <"$base.plain.out") lines, the same four ways ($((SECONDS - start)) s); $line"
}

# ---- python3 -------------------------------------------------------------------------------------
python=$(command -v /usr/bin/python3 python3 | head -n 1)
if [ -n "$python" ]; then
  cat >"$work/alloc.py" <<'PY'
import gc, json, sys
from collections import OrderedDict, defaultdict

# dicts and lists that grow, shrink and churn
table = {}
for i in range(20000):
    table["key%06d" % i] = [i, str(i) * (i % 7), {"n": i, "sq": i * i}]
for i in range(0, 20000, 3):
    del table["key%06d" % i]
print("dict", len(table), sum(v[0] for v in table.values()) % 1000003)

rows = [[j * i % 97 for j in range(50)] for i in range(500)]
rows.sort(key=lambda r: (r[7], r[3], r[0]))
print("lists", sum(map(sum, rows)), rows[0][:5], rows[-1][:5])

# big strings: built, sliced, joined, replaced
text = "".join("line %d: %s\n" % (i, "xyz" * (i % 50)) for i in range(10000))
print("text", len(text), text.count("xyzxyz"), hash(text[1000:2000]) == hash(text[1000:2000]))
big = ("abc" * 1000000).replace("b", "BB")
print("big", len(big), big[:10], big[-10:])
parts = big.split("BB")
print("split", len(parts), len("-".join(parts[:50000])))
blob = bytes(range(256)) * 20000
print("bytes", len(blob), sum(blob[::997]))

# json round trips of nested data
doc = {"items": [{"id": i, "name": "item%d" % i, "tags": ["t%d" % (i % 13)] * (i % 5),
                  "nested": {"a": [i, i + 1, i + 2], "b": {"c": "d" * (i % 30)}}}
                 for i in range(4000)]}
s = json.dumps(doc, sort_keys=True)
back = json.loads(s)
print("json", len(s), back == doc, back["items"][1234]["nested"])
s2 = json.dumps(back, indent=2, sort_keys=True)
print("json-indent", len(s2))

# reference cycles for the cycle collector
class Node:
    def __init__(self, n):
        self.n = n
        self.peers = []
        self.payload = bytearray(n % 200)
gc.collect()
for round in range(3):
    nodes = [Node(i) for i in range(5000)]
    for i, node in enumerate(nodes):
        node.peers.append(nodes[(i * 7 + 1) % len(nodes)])
        node.peers.append(nodes[(i * 13 + 5) % len(nodes)])
    del nodes
    print("gc", round, gc.collect() > 0)

# ordered and default dicts, sets, tuples
od = OrderedDict((str(i), i) for i in range(5000))
for i in range(0, 5000, 2):
    od.move_to_end(str(i))
dd = defaultdict(list)
for i in range(20000):
    dd[i % 101].append(i)
print("collections", list(od)[:3], list(od)[-3:], len(dd), sum(len(v) for v in dd.values()))
print("sets", len(set(range(0, 50000, 3)) & set(range(0, 50000, 5))))
print("done")
PY
  check python3 env PYTHONHASHSEED=0 "$python" "$work/alloc.py"
  check python3-malloc env PYTHONHASHSEED=0 PYTHONMALLOC=malloc "$python" "$work/alloc.py"
else
  echo "skip: python3 is not installed"
  skipped=1
fi

# ---- sqlite3 -------------------------------------------------------------------------------------
if command -v sqlite3 >/dev/null 2>&1; then
  cat >"$work/workload.sql" <<'SQL'
PRAGMA journal_mode = MEMORY;
CREATE TABLE accounts(id INTEGER PRIMARY KEY, name TEXT, region TEXT, balance INTEGER);
CREATE TABLE transfers(id INTEGER PRIMARY KEY, src INTEGER, dst INTEGER, amount INTEGER, memo TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO accounts SELECT i, printf('acct-%05d', i), char(65 + i % 7), (i * 7919) % 100000 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
INSERT INTO transfers SELECT i, 1 + (i * 31) % 20000, 1 + (i * 17 + 3) % 20000, (i * 13) % 5000,
       printf('memo %d %s', i, substr('abcdefghijklmnopqrstuvwxyz', 1 + i % 26)) FROM n;
CREATE INDEX transfers_src ON transfers(src);
CREATE INDEX transfers_dst ON transfers(dst, amount);
CREATE INDEX accounts_region ON accounts(region, balance);
SELECT region, count(*), sum(balance), min(name), max(name) FROM accounts GROUP BY region ORDER BY region;
SELECT a.name, count(t.id), sum(t.amount) FROM accounts a JOIN transfers t ON t.src = a.id
  WHERE a.region = 'C' GROUP BY a.id ORDER BY sum(t.amount) DESC, a.id LIMIT 10;
UPDATE accounts SET balance = balance + (SELECT coalesce(sum(amount), 0) FROM transfers WHERE dst = accounts.id)
  WHERE id % 3 = 0;
DELETE FROM transfers WHERE amount < 100;
SELECT count(*), sum(amount), avg(length(memo)) FROM transfers;
SELECT substr(group_concat(name, ','), 1, 120) FROM (SELECT name FROM accounts ORDER BY balance DESC, id LIMIT 50);
SELECT json_object('total', sum(balance), 'top', json_group_array(name)) FROM (SELECT * FROM accounts ORDER BY balance DESC, id LIMIT 5);
SELECT count(*) FROM transfers WHERE memo LIKE '%xyz%';
CREATE TEMP TABLE wide AS SELECT id, printf('%.*c', 1 + id % 2000, 'w') AS pad FROM accounts;
SELECT count(*), sum(length(pad)) FROM wide;
VACUUM;
PRAGMA integrity_check;
SQL
  # a fresh database file for every run
  sqlite_run() { rm -f "$work/db.sqlite"; sqlite3 "$work/db.sqlite" <"$work/workload.sql"; }
  export -f sqlite_run
  export work
  check sqlite3 bash -c sqlite_run
else
  echo "skip: sqlite3 is not installed (scripts/test.sh installs it)"
  skipped=1
fi

# ---- a C++ program -----------------------------------------------------------------------------
if command -v "$cxx" >/dev/null 2>&1; then
  cat >"$work/containers.cpp" <<'CPP'
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

struct alignas(128) Wide { double v[16]; };

static std::string work(int id)
{
    std::map<std::string, std::vector<int>> m;
    std::unordered_map<int, std::shared_ptr<std::string>> u;
    for (int i = 0; i < 40000; i++) {
        m["k" + std::to_string((i * 7 + id) % 5000)].push_back(i);
        u[i % 3000] = std::make_shared<std::string>(std::string(i % 64, char('a' + id)));
    }
    std::vector<std::unique_ptr<Wide>> wide;
    for (int i = 0; i < 1000; i++) {
        wide.push_back(std::make_unique<Wide>());
        if (reinterpret_cast<uintptr_t>(wide.back().get()) % alignof(Wide) != 0)
            return "misaligned";
        wide.back()->v[0] = i;
    }
    int caught = 0;
    for (int i = 0; i < 2000; i++) {
        try {
            if (i % 3 == 0)
                throw std::runtime_error("error " + std::to_string(i));
        } catch (const std::exception &e) {
            caught += e.what()[0] == 'e';
        }
    }
    long total = 0;
    for (auto &kv : m)
        total += std::accumulate(kv.second.begin(), kv.second.end(), 0L) % 1000;
    size_t chars = 0;
    for (auto &kv : u)
        chars += kv.second->size();
    std::vector<std::string> words;
    for (int i = 0; i < 20000; i++)
        words.push_back(std::to_string(i * 2654435761u % 100000));
    std::sort(words.begin(), words.end());
    return "thread " + std::to_string(id) + ": keys " + std::to_string(m.size()) + " total " +
           std::to_string(total) + " chars " + std::to_string(chars) + " caught " +
           std::to_string(caught) + " first " + words.front() + " last " + words.back() +
           " wide " + std::to_string(wide[999]->v[0]);
}

int main()
{
    std::vector<std::string> results(4);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; i++)
        threads.emplace_back([&results, i] { results[i] = work(i); });
    for (auto &t : threads)
        t.join();
    for (auto &r : results)
        std::printf("%s\n", r.c_str());
    std::string big;
    for (int i = 0; i < 200000; i++)
        big += std::to_string(i);
    big.shrink_to_fit();
    std::printf("big %zu %s\n", big.size(), big.substr(big.size() - 12).c_str());
    return 0;
}
CPP
  if "$cxx" -std=c++17 -O1 -pthread "$work/containers.cpp" -o "$work/containers" 2>"$work/cxx.log"; then
    check cxx "$work/containers"
  else
    fail "the C++ program did not compile: $(tail -n 5 "$work/cxx.log")"
  fi
else
  echo "skip: no C++ compiler ($cxx)"
  skipped=1
fi

# ---- a shell that forks, routed into a witness arena ----------------------------------------------
# A witness arena's pages read as zeros in a forked child (wipe-on-fork); the process-wide route
# keeps its heap across fork, or every command substitution and subshell would crash.
got=$(NALLOC_ROUTE=witness:256m LD_PRELOAD=$lib bash -c 'x=$(echo hi); echo "got $x"; (echo sub)' 2>&1)
if [ "$got" = "$(printf 'got hi\nsub')" ]; then
  echo "ok: bash forks under NALLOC_ROUTE=witness:256m"
else
  fail "bash under NALLOC_ROUTE=witness:256m printed: $got"
fi

[ $failed -eq 0 ] || exit 1
[ $skipped -eq 0 ] || exit 77
exit 0
