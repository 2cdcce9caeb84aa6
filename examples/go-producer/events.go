package main

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// regions are Kemendagri regency/city codes of Sulawesi Tengah and Sulawesi Barat, which the service
// checks exactly (docs/validation.md).
var regions = []string{"7271", "7201", "7203", "7206", "7210", "7212", "7601", "7602"}

const jkkJkmMonthlyRupiah = 16_800

// SourceSystem is what enrolment v2 and later carry in source_system.
const SourceSystem = "rentan-recon go-producer example 1"

type event struct {
	eventID string
	key     string // the Kafka key: the worker's NIK
	fields  map[string]any
}

// events makes valid enrolment and claim events (docs/validation.md) from a seeded generator.
// timestamp-millis and date fields are time.Time, which both libraries take.
type events struct {
	random    *rand.Rand
	agreement string
	branch    string
	nowMs     int64
	claims    int
}

func newEvents(seed uint64, agreement, branch string, nowMs int64) *events {
	return &events{random: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), agreement: agreement, branch: branch, nowMs: nowMs}
}

// enrolment: even indexes an ENROLLED event, odd ones a CONTRIBUTION_PAID for the current month.
func (e *events) enrolment(v schemaVersion, index int) event {
	occurredAt := e.occurredAt()
	day := utcDay(occurredAt)
	payment := index%2 == 1
	nik, id := e.nik(), e.eventID()
	eventType, amount, paidMonths := "ENROLLED", int64(0), []any{}
	if payment {
		eventType, amount = "CONTRIBUTION_PAID", jkkJkmMonthlyRupiah
		paidMonths = []any{fmt.Sprintf("%04d-%02d", day.Year(), int(day.Month()))}
	}
	fields := map[string]any{
		"event_id":           id,
		"event_type":         eventType,
		"occurred_at":        time.UnixMilli(occurredAt).UTC(),
		"branch_code":        e.branch,
		"agreement_id":       e.agreement,
		"nik":                nik,
		"programmes":         []any{"JKK", "JKM"},
		"declared_income":    int64(1_000_000),
		"coverage_start":     time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, time.UTC),
		"coverage_end":       nil,
		"paid_months":        paidMonths,
		"amount":             amount,
		"termination_reason": optionalString{},
		"source_system":      optionalString{SourceSystem, true},
	}
	return event{id, nik, only(v, fields)}
}

// claim: a FILED JKK claim, the incident 1-30 days before the UTC date it is reported on.
func (e *events) claim(v schemaVersion) event {
	occurredAt := e.occurredAt()
	nik, id := e.nik(), e.eventID()
	e.claims++
	fields := map[string]any{
		"event_id":       id,
		"event_type":     "FILED",
		"occurred_at":    time.UnixMilli(occurredAt).UTC(),
		"branch_code":    e.branch,
		"claim_id":       fmt.Sprintf("KLM-%s-%06d", id[:8], e.claims),
		"nik":            nik,
		"agreement_id":   optionalString{e.agreement, true},
		"programme":      "JKK",
		"incident_date":  utcDay(occurredAt).AddDate(0, 0, -1-e.random.IntN(30)),
		"amount_claimed": int64(5_000_000),
		"amount_paid":    nil,
	}
	return event{id, nik, only(v, fields)}
}

// only keeps the fields the version has (source_system exists from enrolment v2 on).
func only(v schemaVersion, fields map[string]any) map[string]any {
	out := map[string]any{}
	for name, value := range fields {
		if v.fields[name] {
			out[name] = value
		}
	}
	return out
}

// occurredAt is up to five minutes before now: well inside the service's accepted window.
func (e *events) occurredAt() int64 {
	return e.nowMs - e.random.Int64N(300_000)
}

// eventID is a version-4 UUID from the seeded generator; its dashes keep any digit run below 16.
func (e *events) eventID() string {
	high := (e.random.Uint64() &^ 0xF000) | 0x4000
	low := (e.random.Uint64() & 0x3FFFFFFFFFFFFFFF) | 0x8000000000000000
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", high>>32, (high>>16)&0xFFFF, high&0xFFFF, low>>48, low&0xFFFFFFFFFFFF)
}

// nik is a synthetic NIK of the right shape: regency/city code, district 01-99, birth date DDMMYY
// (day + 40 for women; days up to 28 exist in every month), serial 0001-9999.
func (e *events) nik() string {
	region := regions[e.random.IntN(len(regions))]
	district := 1 + e.random.IntN(99)
	day := 1 + e.random.IntN(28)
	if e.random.IntN(2) == 1 {
		day += 40
	}
	month := 1 + e.random.IntN(12)
	year := e.random.IntN(100)
	serial := 1 + e.random.IntN(9999)
	return fmt.Sprintf("%s%02d%02d%02d%02d%04d", region, district, day, month, year, serial)
}
