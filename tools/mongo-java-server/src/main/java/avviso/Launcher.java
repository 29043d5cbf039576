package avviso;

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;

/**
 * Runs mongo-java-server with its memory backend on 127.0.0.1 (or the given host) and the given port,
 * for the test harness (dev/services.ts, startMongoJavaServer).
 *
 * <p>Usage: {@code java -cp '<jars>/*' avviso.Launcher <port> [host]}. Prints one line starting with
 * {@code ready} once it accepts connections. Exits when its standard input closes (so that it never
 * outlives the process that started it, even one killed with SIGKILL) and on SIGTERM or Ctrl-C.
 */
public final class Launcher {
  /**
   * What the server says it is. mongo-java-server reports MongoDB 3.6 (wire version 6) by default,
   * which the Node.js driver 7.x refuses (it needs 9 or newer); 17 is MongoDB 6.0's.
   */
  private static final MongoVersion VERSION = new MongoVersion() {
    @Override
    public List<Integer> getVersionArray() {
      return List.of(6, 0, 0);
    }

    @Override
    public int getWireVersion() {
      return 17;
    }
  };

  private Launcher() {}

  public static void main(String[] args) {
    if (args.length < 1 || args.length > 2) {
      System.err.println("usage: avviso.Launcher <port> [host (default 127.0.0.1)]");
      System.exit(2);
    }
    int port;
    try {
      port = Integer.parseInt(args[0]);
    } catch (NumberFormatException e) {
      System.err.println("avviso.Launcher: the port must be a number, not '" + args[0] + "'");
      System.exit(2);
      return;
    }
    String host = args.length > 1 ? args[1] : "127.0.0.1";

    MongoServer server = new MongoServer(new MemoryBackend().version(VERSION));
    try {
      server.bind(host, port);
    } catch (RuntimeException e) {
      System.err.println("avviso.Launcher: cannot listen on " + host + ":" + port + ": " + e.getMessage());
      System.exit(1);
      return;
    }
    // The JVM runs shutdown hooks on SIGTERM, SIGINT and System.exit.
    Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow, "shutdown"));
    System.out.println("ready: mongo-java-server (memory backend, wire version " + VERSION.getWireVersion() + ") on " + host + ":" + port);
    System.out.flush();

    // The main thread waits for the end of standard input; the server runs on its own threads.
    try (InputStream in = System.in) {
      byte[] buf = new byte[256];
      while (in.read(buf) >= 0) {
        // Input is ignored: only its end matters.
      }
    } catch (IOException e) {
      // A broken pipe is an end as well.
    }
    System.exit(0);
  }
}
