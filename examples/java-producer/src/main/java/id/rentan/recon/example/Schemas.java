package id.rentan.recon.example;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.avro.Schema;
import org.apache.avro.SchemaParseException;

/** The contract's schemas, read at run time from {@code DIR/<subject>/v<N>.avsc}. */
final class Schemas {
  private static final Pattern VERSION_FILE = Pattern.compile("v([1-9][0-9]*)\\.avsc");

  private final Path dir;

  Schemas(Path dir) {
    if (!Files.isDirectory(dir)) {
      throw new Args.UsageError("--schemas " + dir + " is not a folder: pass the repository's schemas/ folder");
    }
    this.dir = dir;
  }

  /** Version number to file, in ascending order. */
  TreeMap<Integer, Path> versions(String subject) {
    TreeMap<Integer, Path> found = new TreeMap<>();
    Path folder = dir.resolve(subject);
    if (Files.isDirectory(folder)) {
      try (Stream<Path> files = Files.list(folder)) {
        files.forEach(
            file -> {
              Matcher m = VERSION_FILE.matcher(file.getFileName().toString());
              if (m.matches()) {
                found.put(Integer.parseInt(m.group(1)), file);
              }
            });
      } catch (IOException e) {
        throw new Args.UsageError("cannot list " + folder + ": " + e.getMessage());
      }
    }
    if (found.isEmpty()) {
      throw new Args.UsageError("no " + subject + "/v<N>.avsc under " + dir + ": pass the repository's schemas/ folder");
    }
    return found;
  }

  int newest(String subject) {
    return versions(subject).lastKey();
  }

  /** One version's schema; each file gets its own parser, since every version reuses the record names. */
  Schema load(String subject, int version) {
    TreeMap<Integer, Path> all = versions(subject);
    Path file = all.get(version);
    if (file == null) {
      String known = all.keySet().stream().map(String::valueOf).collect(Collectors.joining(", "));
      throw new Args.UsageError(subject + " has no version " + version + " under " + dir + "; versions: " + known);
    }
    try {
      return new Schema.Parser().parse(file.toFile());
    } catch (IOException | SchemaParseException e) {
      throw new Args.UsageError("cannot read " + file + ": " + e.getMessage());
    }
  }
}
