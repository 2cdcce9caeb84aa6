package id.rentan.recon.example;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** {@code --name value} options of one command; unknown, repeated or valueless options are usage errors. */
final class Args {
  private final String command;
  private final Map<String, String> values = new HashMap<>();

  Args(String command, List<String> argv, Set<String> allowed) {
    this.command = command;
    for (int i = 0; i < argv.size(); i += 2) {
      String name = argv.get(i);
      if (!name.startsWith("--") || !allowed.contains(name.substring(2))) {
        throw new UsageError(command + ": unknown option " + name + "; options are --" + String.join(", --", allowed));
      }
      if (i + 1 >= argv.size()) {
        throw new UsageError(command + ": " + name + " needs a value");
      }
      if (values.put(name.substring(2), argv.get(i + 1)) != null) {
        throw new UsageError(command + ": " + name + " given twice; give it once");
      }
    }
  }

  String required(String name) {
    String value = values.get(name);
    if (value == null) {
      throw new UsageError(command + ": --" + name + " is required");
    }
    return value;
  }

  String optional(String name, String fallback) {
    return values.getOrDefault(name, fallback);
  }

  boolean has(String name) {
    return values.containsKey(name);
  }

  int positiveInt(String name, String fallback) {
    String text = fallback == null ? required(name) : optional(name, fallback);
    try {
      int value = Integer.parseInt(text);
      if (value >= 1) {
        return value;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new UsageError(command + ": --" + name + " must be a whole number of 1 or more");
  }

  long seed() {
    if (!has("seed")) {
      return System.nanoTime() ^ Double.doubleToLongBits(Math.random());
    }
    try {
      return Long.parseLong(values.get("seed"));
    } catch (NumberFormatException e) {
      throw new UsageError(command + ": --seed must be a whole number");
    }
  }

  /** A branch code or agreement id as the contract allows (validation.md, code_invalid). */
  String code(String name, String fallback) {
    String value = optional(name, fallback);
    if (!value.matches("[A-Za-z0-9._-]{1,64}") || value.matches(".*[0-9]{16}.*")) {
      throw new UsageError(
          command + ": --" + name + " must be 1-64 characters from A-Z a-z 0-9 . _ - (and never hold a NIK)");
    }
    return value;
  }

  /** A mistake on the command line: printed as one line, exit status 2. */
  static final class UsageError extends RuntimeException {
    UsageError(String message) {
      super(message);
    }
  }
}
