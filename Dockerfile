# Prism node image: Node 24 runs the TypeScript sources directly (type stripping), no build step.
FROM node:24-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
ENV NODE_ENV=production
USER node
# --max-semi-space-size and --v8-pool-size: see src/runtime/node-flags.ts
ENTRYPOINT ["node", "--max-semi-space-size=1", "--v8-pool-size=1", "bin/prism.js"]
CMD ["node"]
