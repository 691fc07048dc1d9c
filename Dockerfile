# Prism node image: Node 24 runs the TypeScript sources directly (type stripping), no build step.
FROM node:24-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
ENV NODE_ENV=production
USER node
ENTRYPOINT ["node", "bin/prism.js"]
CMD ["node"]
