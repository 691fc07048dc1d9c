#!/usr/bin/env bash
D=$(realpath -m "${1:?data dir}")
for n in rgw osd mon; do
  f=$D/run/$n.pid; [ -f "$f" ] || continue; p=$(cat "$f")
  if kill "$p" 2>/dev/null; then
    for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$p" 2>/dev/null && kill -9 "$p"
  fi
  rm -f "$f"
done
