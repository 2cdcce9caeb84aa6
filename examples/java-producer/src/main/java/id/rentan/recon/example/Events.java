package id.rentan.recon.example;

import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.generic.GenericRecordBuilder;

/**
 * Valid enrolment and claim events (docs/validation.md), built as GenericRecords for whichever schema
 * version is given: fields the version lacks are left out, fields it has but we do not set take their
 * schema default. Plain Avro types, no logical-type conversions: timestamp-millis is a long of epoch
 * milliseconds, date an int of days since 1970-01-01.
 */
final class Events {
  /** Kemendagri regency/city codes of Sulawesi Tengah and Sulawesi Barat, checked exactly by the service. */
  private static final String[] REGIONS = {"7271", "7201", "7203", "7206", "7210", "7212", "7601", "7602"};

  private static final long JKK_JKM_MONTHLY_RUPIAH = 16_800;

  private final Random random;
  private final String agreementId;
  private final String branchCode;
  private final long nowMs;
  private int claims;

  Events(long seed, String agreementId, String branchCode, long nowMs) {
    this.random = new Random(seed);
    this.agreementId = agreementId;
    this.branchCode = branchCode;
    this.nowMs = nowMs;
  }

  /** An event together with the Kafka key the contract asks for (the worker's NIK, UTF-8). */
  record Event(String eventId, String key, GenericRecord record) {}

  /** Even calls give an ENROLLED event, odd ones a CONTRIBUTION_PAID for the current month. */
  Event enrolment(Schema schema, int index) {
    long occurredAt = occurredAt();
    LocalDate day = utcDate(occurredAt);
    boolean payment = index % 2 == 1;
    String nik = nik();
    String eventId = eventId();
    Map<String, Object> fields =
        Map.ofEntries(
            Map.entry("event_id", eventId),
            Map.entry("event_type", symbol(schema.getField("event_type").schema(), payment ? "CONTRIBUTION_PAID" : "ENROLLED")),
            Map.entry("occurred_at", occurredAt),
            Map.entry("branch_code", branchCode),
            Map.entry("agreement_id", agreementId),
            Map.entry("nik", nik),
            Map.entry("programmes", programmes(schema.getField("programmes").schema())),
            Map.entry("declared_income", 1_000_000L),
            Map.entry("coverage_start", (int) day.withDayOfMonth(1).toEpochDay()),
            Map.entry("paid_months", payment ? List.of(String.format("%04d-%02d", day.getYear(), day.getMonthValue())) : List.of()),
            Map.entry("amount", payment ? JKK_JKM_MONTHLY_RUPIAH : 0L),
            Map.entry("source_system", "rentan-recon java-producer example 1"));
    return new Event(eventId, nik, build(schema, fields));
  }

  /** A FILED JKK claim, the incident a few days before the report. */
  Event claim(Schema schema) {
    long occurredAt = occurredAt();
    String nik = nik();
    String eventId = eventId();
    claims += 1;
    Map<String, Object> fields =
        Map.ofEntries(
            Map.entry("event_id", eventId),
            Map.entry("event_type", symbol(schema.getField("event_type").schema(), "FILED")),
            Map.entry("occurred_at", occurredAt),
            Map.entry("branch_code", branchCode),
            Map.entry("claim_id", String.format("KLM-%s-%06d", eventId.substring(0, 8), claims)),
            Map.entry("nik", nik),
            Map.entry("agreement_id", agreementId),
            Map.entry("programme", symbol(schema.getField("programme").schema(), "JKK")),
            // the day before the UTC date at the latest: never after the date of occurred_at in any zone
            Map.entry("incident_date", (int) utcDate(occurredAt).minusDays(1 + random.nextInt(30)).toEpochDay()),
            Map.entry("amount_claimed", 5_000_000L));
    return new Event(eventId, nik, build(schema, fields));
  }

  private static GenericRecord build(Schema schema, Map<String, Object> fields) {
    GenericRecordBuilder builder = new GenericRecordBuilder(schema);
    fields.forEach(
        (name, value) -> {
          if (schema.getField(name) != null) { // e.g. source_system exists from enrolment v2 on
            builder.set(name, value);
          }
        });
    return builder.build(); // fills the defaults; fails if a field without one was not set
  }

  /** Up to five minutes ago: well inside the service's accepted window. */
  private long occurredAt() {
    return nowMs - random.nextInt(300_000);
  }

  private static LocalDate utcDate(long epochMs) {
    return Instant.ofEpochMilli(epochMs).atOffset(ZoneOffset.UTC).toLocalDate();
  }

  /** A random version-4 UUID from the seeded generator; its dashes keep any digit run below 16. */
  private String eventId() {
    long high = (random.nextLong() & ~0xF000L) | 0x4000L;
    long low = (random.nextLong() & 0x3FFFFFFFFFFFFFFFL) | 0x8000000000000000L;
    return new UUID(high, low).toString();
  }

  /**
   * A NIK of the right shape: regency/city code, district 01-99, birth date DDMMYY (day + 40 for
   * women; days up to 28 exist in every month), serial 0001-9999. Synthetic, of course.
   */
  private String nik() {
    String region = REGIONS[random.nextInt(REGIONS.length)];
    int district = 1 + random.nextInt(99);
    int day = 1 + random.nextInt(28) + (random.nextBoolean() ? 40 : 0);
    int month = 1 + random.nextInt(12);
    int year = random.nextInt(100);
    int serial = 1 + random.nextInt(9999);
    return String.format("%s%02d%02d%02d%02d%04d", region, district, day, month, year, serial);
  }

  private static GenericData.EnumSymbol symbol(Schema enumSchema, String name) {
    return new GenericData.EnumSymbol(enumSchema, name);
  }

  private static GenericData.Array<GenericData.EnumSymbol> programmes(Schema arraySchema) {
    Schema programme = arraySchema.getElementType();
    return new GenericData.Array<>(arraySchema, List.of(symbol(programme, "JKK"), symbol(programme, "JKM")));
  }
}
