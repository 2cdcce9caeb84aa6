package id.rentan.recon.example;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * A branch system's producer for rentan-recon, in Java with Apache Avro and the standard Kafka client.
 *
 * <pre>
 * publish --bootstrap HOST:PORT --schemas DIR --enrolment-topic T --claim-topic T --count N
 *         [--enrolment-version V] [--agreement-id ID] [--branch-code B] [--seed S]
 * write-container --schemas DIR --subject enrolment|claim --version V --codec null|deflate|snappy
 *         --count N --out FILE [--seed S] [--agreement-id ID] [--branch-code B]
 * </pre>
 *
 * Exit status: 0 done; 1 the broker or the file system failed (a one-line reason on stderr); 2 usage.
 */
public final class Main {
  static final String DEFAULT_AGREEMENT = "PKS-7271-2025";
  static final String DEFAULT_BRANCH = "PALU";

  private static final String USAGE =
      "usage: publish --bootstrap HOST:PORT --schemas DIR --enrolment-topic T --claim-topic T --count N"
          + " [--enrolment-version V] [--agreement-id ID] [--branch-code B] [--seed S]\n"
          + "       write-container --schemas DIR --subject enrolment|claim --version V"
          + " --codec null|deflate|snappy --count N --out FILE [--seed S] [--agreement-id ID] [--branch-code B]";

  private Main() {}

  public static void main(String[] argv) {
    PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    int status;
    try {
      status = run(Arrays.asList(argv), out);
    } catch (Args.UsageError e) {
      System.err.println("error: " + e.getMessage());
      status = 2;
    } catch (Failure e) {
      System.err.println("error: " + e.getMessage());
      status = 1;
    } catch (IOException | RuntimeException e) {
      System.err.println("error: " + e.getClass().getSimpleName() + ": " + e.getMessage());
      status = 1;
    }
    out.flush();
    System.exit(status);
  }

  static int run(List<String> argv, PrintStream out) throws IOException {
    if (argv.isEmpty()) {
      throw new Args.UsageError("no command\n" + USAGE);
    }
    List<String> options = argv.subList(1, argv.size());
    switch (argv.get(0)) {
      case "publish" -> {
        Args args =
            new Args(
                "publish",
                options,
                Set.of("bootstrap", "schemas", "enrolment-topic", "claim-topic", "count", "enrolment-version",
                    "agreement-id", "branch-code", "seed"));
        Schemas schemas = new Schemas(Path.of(args.required("schemas")));
        int version = args.has("enrolment-version")
            ? args.positiveInt("enrolment-version", null)
            : schemas.newest("enrolment");
        Publish.run(
            args.required("bootstrap"),
            schemas.load("enrolment", version),
            schemas.load("claim", schemas.newest("claim")),
            args.required("enrolment-topic"),
            args.required("claim-topic"),
            args.positiveInt("count", null),
            events(args),
            out);
      }
      case "write-container" -> {
        Args args =
            new Args(
                "write-container",
                options,
                Set.of("schemas", "subject", "version", "codec", "count", "out", "seed", "agreement-id",
                    "branch-code"));
        String subject = args.required("subject");
        if (!subject.equals("enrolment") && !subject.equals("claim")) {
          throw new Args.UsageError("write-container: --subject must be enrolment or claim");
        }
        Schemas schemas = new Schemas(Path.of(args.required("schemas")));
        Container.write(
            schemas.load(subject, args.positiveInt("version", null)),
            subject,
            args.required("codec"),
            args.positiveInt("count", null),
            Path.of(args.required("out")),
            events(args),
            out);
      }
      case "-h", "--help", "help" -> out.println(USAGE);
      default -> throw new Args.UsageError("unknown command " + argv.get(0) + "\n" + USAGE);
    }
    return 0;
  }

  /** The broker or the file system failed: printed as one line, exit status 1. */
  static final class Failure extends RuntimeException {
    Failure(String message) {
      super(message);
    }
  }

  private static Events events(Args args) {
    return new Events(
        args.seed(),
        args.code("agreement-id", DEFAULT_AGREEMENT),
        args.code("branch-code", DEFAULT_BRANCH),
        System.currentTimeMillis());
  }
}
