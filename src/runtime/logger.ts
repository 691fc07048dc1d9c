import pino, { type Logger } from 'pino';

/**
 * JSON lines on stdout. Redaction is the second line of defence for credentials (the first is
 * that jobs only name them): any field that looks like one is censored wherever it sits.
 */
export function createLogger(
  name: string,
  level = process.env.PRISM_LOG_LEVEL ?? 'info',
  destination?: pino.DestinationStream,
): Logger {
  return pino(
    {
      name: 'prism',
      level,
      base: { node: name },
      redact: {
        paths: [
          'authorization',
          'headers.authorization',
          '*.headers.authorization',
          'request.headers.authorization',
          'token',
          '*.token',
          'secret',
          '*.secret',
          'password',
          '*.password',
          'access_token',
          '*.access_token',
        ],
        censor: '[REDACTED]',
      },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
