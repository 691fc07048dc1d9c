#!/usr/bin/env -S node --max-semi-space-size=1 --v8-pool-size=1
// The V8 flags are those of src/runtime/node-flags.ts (why: see there).
// Node >= 22.18 runs the TypeScript sources directly (type stripping); no build step.
import '../src/cli/main.ts';
