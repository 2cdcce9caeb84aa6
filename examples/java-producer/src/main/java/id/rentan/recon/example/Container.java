package id.rentan.recon.example;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.avro.Schema;
import org.apache.avro.file.CodecFactory;
import org.apache.avro.file.DataFileWriter;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;

/** {@code write-container}: N events in an Avro object container file, compressed with the codec asked. */
final class Container {
  private Container() {}

  static void write(
      Schema schema, String subject, String codec, int count, Path file, Events events, PrintStream out)
      throws IOException {
    CodecFactory factory =
        switch (codec) {
          case "null" -> CodecFactory.nullCodec();
          case "deflate" -> CodecFactory.deflateCodec(CodecFactory.DEFAULT_DEFLATE_LEVEL);
          case "snappy" -> CodecFactory.snappyCodec(); // org.xerial.snappy:snappy-java, in the jar
          default -> throw new Args.UsageError("write-container: --codec must be null, deflate or snappy");
        };
    List<String> ids = new ArrayList<>(count);
    try (DataFileWriter<GenericRecord> writer = new DataFileWriter<>(new GenericDatumWriter<>(schema))) {
      writer.setCodec(factory);
      writer.create(schema, file.toFile());
      for (int i = 0; i < count; i++) {
        Events.Event event = subject.equals("claim") ? events.claim(schema) : events.enrolment(schema, i);
        writer.append(event.record());
        ids.add(event.eventId());
      }
    }
    ids.forEach(out::println); // only once the file is complete
  }
}
