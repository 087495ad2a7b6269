// Releasing an HTTP/1 parser when its connection ends, on both sides of the proxy. A native parser is
// kept alive by a strong handle until close() deletes it; without close() every closed connection left its
// parser, callbacks, connection object and socket behind (as node:http's own freeParser knows).
import { HTTPParser, type HTTPParserInstance } from './native-parser.js';

/**
 * Stop the parser consuming its socket, drop its callbacks and delete it. Call it only once the parser's
 * stack has unwound (not from inside one of its callbacks); calling it twice is harmless.
 */
export function releaseParser(p: HTTPParserInstance, consuming: boolean): void {
  if (consuming) {
    try {
      p.unconsume();
    } catch {
      // not consuming (any more)
    }
  }
  p[HTTPParser.kOnMessageBegin] = null;
  p[HTTPParser.kOnHeaders] = null;
  p[HTTPParser.kOnHeadersComplete] = null;
  p[HTTPParser.kOnBody] = null;
  p[HTTPParser.kOnMessageComplete] = null;
  p[HTTPParser.kOnExecute] = null;
  try {
    p.remove();
    p.close();
  } catch {
    // already released
  }
}
