package id.rentan.recon.example;

import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * {@code publish}: N enrolment and N claim events as Avro single-object messages
 * ({@code C3 01}, the schema's CRC-64-AVRO fingerprint little-endian, the binary body), keyed by the
 * worker's NIK as UTF-8 bytes, the same key bytes as {@code recon publish}.
 */
final class Publish {
  private static final int MAX_BLOCK_MS = 30_000;

  private Publish() {}

  private record Sent(String subject, String eventId, Future<RecordMetadata> ack) {}

  static void run(
      String bootstrap,
      Schema enrolmentSchema,
      Schema claimSchema,
      String enrolmentTopic,
      String claimTopic,
      int count,
      Events events,
      PrintStream out) {
    // The encoder writes the header itself; the fingerprint is SchemaNormalization.parsingFingerprint64.
    BinaryMessageEncoder<GenericRecord> enrolments = new BinaryMessageEncoder<>(GenericData.get(), enrolmentSchema);
    BinaryMessageEncoder<GenericRecord> claims = new BinaryMessageEncoder<>(GenericData.get(), claimSchema);
    Properties config = new Properties();
    config.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    config.put(ProducerConfig.ACKS_CONFIG, "all");
    config.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true"); // a retried send is never written twice
    config.put(ProducerConfig.LINGER_MS_CONFIG, "5");
    config.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
    config.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, String.valueOf(MAX_BLOCK_MS)); // fail, rather than hang
    List<Sent> sent = new ArrayList<>(2 * count);
    try (KafkaProducer<byte[], byte[]> producer =
        new KafkaProducer<>(config, new ByteArraySerializer(), new ByteArraySerializer())) {
      // Once per topic, so that a wrong --bootstrap or topic fails after one max.block.ms, not one per record.
      for (String topic : List.of(enrolmentTopic, claimTopic)) {
        try {
          producer.partitionsFor(topic);
        } catch (TimeoutException e) {
          throw new Main.Failure(
              "no broker answered at " + bootstrap + " with topic " + topic + " within " + MAX_BLOCK_MS / 1000 + " s:"
                  + " check --bootstrap and that the topic exists");
        }
      }
      for (int i = 0; i < count; i++) {
        Events.Event event = events.enrolment(enrolmentSchema, i);
        sent.add(new Sent("enrolment", event.eventId(), producer.send(message(enrolmentTopic, event, enrolments))));
      }
      for (int i = 0; i < count; i++) {
        Events.Event event = events.claim(claimSchema);
        sent.add(new Sent("claim", event.eventId(), producer.send(message(claimTopic, event, claims))));
      }
      producer.flush();
      for (Sent s : sent) {
        s.ack().get(); // throws if the broker refused it: nothing is printed as sent that was not
        out.println(s.subject() + " " + s.eventId());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new Main.Failure("interrupted while waiting for the broker");
    } catch (ExecutionException e) {
      throw new Main.Failure("the broker did not take a record: " + e.getCause().getMessage());
    }
  }

  private static ProducerRecord<byte[], byte[]> message(
      String topic, Events.Event event, BinaryMessageEncoder<GenericRecord> encoder) {
    return new ProducerRecord<>(topic, event.key().getBytes(StandardCharsets.UTF_8), bytes(encode(encoder, event)));
  }

  private static ByteBuffer encode(BinaryMessageEncoder<GenericRecord> encoder, Events.Event event) {
    try {
      return encoder.encode(event.record());
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private static byte[] bytes(ByteBuffer buffer) {
    byte[] out = new byte[buffer.remaining()];
    buffer.get(out);
    return out;
  }
}
