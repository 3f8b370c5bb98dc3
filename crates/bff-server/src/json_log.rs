//! JSON log lines (`[log] format = "json"`, the default into a pipe), written straight from the
//! event and from span fields formatted once, when the span was made.
//!
//! `tracing-subscriber`'s own JSON formatter stores each span's fields as a JSON object text and
//! parses that text again for every line written inside the span, and builds each line through
//! `serde_json` maps. With a line per request inside the request's span, that was most of the
//! cost of logging (BENCHMARKS.md). Here a span's fields are kept as the JSON members they are
//! (`"id":"…"`), copied into each line as they are, and the line is written field by field.
//!
//! The lines are the ones the standard formatter wrote, so what reads them need not change:
//!
//! ```json
//! {"timestamp":"2026-11-30T12:00:00.000000Z","level":"INFO","fields":{"message":"request","status":200},"target":"bff_http::access","spans":[{"id":"0193…","name":"request"}]}
//! ```
//!
//! `spans` lists the spans the event was logged in, outermost first, and is left out outside any
//! span. Strings are JSON-escaped (quotes, backslashes, control characters); integers and
//! booleans are JSON numbers and booleans; anything else is its `Debug` text as a string. Events
//! from the `log` crate carry their `log.*` fields and the `log` target they were logged under.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent as _;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats fields as JSON object members without the braces (`"a":1,"b":"x"`): a span's
/// fields, kept in the span for every line written inside it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct JsonFields;

/// Formats an event as one JSON line, with the members the spans' [`JsonFields`] hold.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct JsonLines;

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut members = Members::new(&mut writer, true);
        fields.record(&mut members);
        members.result
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let first = current.fields.is_empty();
        let mut writer = current.as_writer();
        let mut members = Members::new(&mut writer, first);
        fields.record(&mut members);
        members.result
    }
}

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str("{\"timestamp\":\"")?;
        writer.write_str(&rfc3339_micros(std::time::SystemTime::now()))?;
        write!(
            writer,
            "\",\"level\":\"{}\",\"fields\":{{",
            metadata.level()
        )?;
        let mut members = Members::new(&mut writer, true);
        event.record(&mut members);
        members.result?;
        writer.write_str("},\"target\":")?;
        write_string(&mut writer, metadata.target())?;
        if let Some(scope) = ctx.event_scope() {
            writer.write_str(",\"spans\":[")?;
            for (i, span) in scope.from_root().enumerate() {
                if i > 0 {
                    writer.write_char(',')?;
                }
                writer.write_char('{')?;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<JsonFields>>()
                    && !fields.fields.is_empty()
                {
                    writer.write_str(&fields.fields)?;
                    writer.write_char(',')?;
                }
                writer.write_str("\"name\":")?;
                write_string(&mut writer, span.name())?;
                writer.write_char('}')?;
            }
            writer.write_char(']')?;
        }
        writer.write_str("}\n")
    }
}

/// `time` in UTC as `tracing-subscriber`'s `SystemTime` writes it (RFC 3339, microseconds,
/// `Z`), from fixed-width digits rather than through `fmt` per component: the timestamp was a
/// fifth of a line's formatting. Outside the years 1970 to 9999, which no clock here reaches,
/// the text is 1970's or the year is capped at 9999.
fn rfc3339_micros(time: std::time::SystemTime) -> TimestampText {
    let since_epoch = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let of_day = seconds % 86_400;
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for i in (at..at + width).rev() {
            text[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year.min(9999));
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, of_day / 3600);
    put(14, 2, of_day % 3600 / 60);
    put(17, 2, of_day % 60);
    put(20, 6, u64::from(since_epoch.subsec_micros()));
    TimestampText(text)
}

/// The 27 ASCII bytes of [`rfc3339_micros`].
struct TimestampText([u8; 27]);

impl std::ops::Deref for TimestampText {
    type Target = str;

    fn deref(&self) -> &str {
        // Only ASCII digits and separators are ever written into it.
        std::str::from_utf8(&self.0).unwrap_or("0000-00-00T00:00:00.000000Z")
    }
}

/// Year, month and day of the `days`-th day after 1970-01-01 (the proleptic Gregorian
/// calendar; Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Writes each recorded field as a JSON member, a comma before every one but the first.
struct Members<'a, 'w> {
    out: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl<'a, 'w> Members<'a, 'w> {
    fn new(out: &'a mut Writer<'w>, first: bool) -> Self {
        Self {
            out,
            first,
            result: Ok(()),
        }
    }

    /// Writes `"name":` (after a comma unless first), then the value through `value`.
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'w>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !self.first {
                self.out.write_char(',')?;
            }
            self.first = false;
            let name = field.name();
            write_string(self.out, name.strip_prefix("r#").unwrap_or(name))?;
            self.out.write_char(':')?;
            value(self.out)
        })();
    }
}

impl Visit for Members<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |out| write_string(out, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |out| write_u64(out, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |out| {
            if value < 0 {
                out.write_char('-')?;
            }
            write_u64(out, value.unsigned_abs())
        });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: those are strings, as `serde_json` would not write them.
        if value.is_finite() {
            self.member(field, |out| write!(out, "{value}"));
        } else {
            self.member(field, |out| write_string(out, &value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

/// `value` in decimal, digit by digit: every request line has two numbers (status, duration),
/// and `write!` spent more on each than on the rest of its member.
fn write_u64(out: &mut Writer<'_>, mut value: u64) -> fmt::Result {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.write_str(std::str::from_utf8(&digits[start..]).map_err(|_| fmt::Error)?)
}

/// `value` as a JSON string, quotes included.
fn write_string(out: &mut Writer<'_>, value: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(value)?;
    out.write_char('"')
}

/// A writer that JSON-escapes what passes through it (without adding quotes), so `Debug` text
/// is escaped as it is formatted, with no string in between.
struct Escaped<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaped<'_, '_> {
    fn write_str(&mut self, value: &str) -> fmt::Result {
        // Nearly every value (ids, paths, names) needs no escape: one check over all of it,
        // then one write.
        if !value
            .bytes()
            .any(|b| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f)
        {
            return self.0.write_str(value);
        }
        let mut plain_from = 0;
        for (at, byte) in value.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f | 0x7f => "",
                _ => continue,
            };
            self.0.write_str(&value[plain_from..at])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain_from = at + 1;
        }
        self.0.write_str(&value[plain_from..])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// The lines `log` writes through [`JsonLines`], each parsed.
    fn lines(log: impl FnOnce()) -> Vec<serde_json::Value> {
        let captured = Captured::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(captured.clone())
            .fmt_fields(JsonFields)
            .event_format(JsonLines);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(text.ends_with('\n'), "{text:?}");
        text.lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}"))
            })
            .collect()
    }

    #[test]
    fn a_line_has_the_standard_members_and_typed_fields() {
        let lines = lines(|| {
            tracing::info!(
                status = 200u16,
                ok = true,
                delta = -3i64,
                ratio = 0.5,
                path = "/a",
                "request"
            );
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], module_path!());
        assert_eq!(
            line["fields"],
            serde_json::json!({"message": "request", "status": 200, "ok": true, "delta": -3, "ratio": 0.5, "path": "/a"})
        );
        let timestamp = line["timestamp"].as_str().unwrap();
        assert!(
            timestamp.len() == 27 && timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
            "{timestamp}"
        );
        assert!(line.get("spans").is_none(), "outside any span: {line}");
    }

    #[test]
    fn integers_are_written_whole_at_their_edges() {
        let lines = lines(|| {
            tracing::info!(
                zero = 0u64,
                nine = 9u64,
                ten = 10u64,
                max = u64::MAX,
                min = i64::MIN,
                minus_one = -1i64,
                "edges"
            );
        });
        let fields = &lines[0]["fields"];
        assert_eq!(fields["zero"], 0);
        assert_eq!(fields["nine"], 9);
        assert_eq!(fields["ten"], 10);
        assert_eq!(fields["max"], u64::MAX);
        assert_eq!(fields["min"], i64::MIN);
        assert_eq!(fields["minus_one"], -1);
    }

    #[test]
    fn spans_are_listed_outermost_first_with_fields_recorded_later() {
        let lines = lines(|| {
            let outer =
                tracing::info_span!("request", id = "r-1", trace_id = tracing::field::Empty);
            let _outer = outer.enter();
            outer.record("trace_id", "t-1");
            let inner = tracing::info_span!("store");
            let _inner = inner.enter();
            tracing::warn!("inside");
        });
        assert_eq!(
            lines[0]["spans"],
            serde_json::json!([{"id": "r-1", "trace_id": "t-1", "name": "request"}, {"name": "store"}])
        );
        assert_eq!(lines[0]["level"], "WARN");
    }

    #[test]
    fn hostile_text_is_escaped_and_stays_one_line() {
        let hostile = "a\"b\\c\nd\re\tf\u{1}g\u{7f}h </script> é";
        let lines = lines(|| {
            let span = tracing::info_span!("request", id = hostile);
            let _entered = span.enter();
            tracing::info!(value = hostile, debugged = ?hostile, "{hostile}");
        });
        assert_eq!(lines.len(), 1, "a newline in a value split the line");
        let line = &lines[0];
        assert_eq!(line["fields"]["value"], hostile);
        assert_eq!(line["fields"]["message"], hostile);
        assert_eq!(line["fields"]["debugged"], format!("{hostile:?}"));
        assert_eq!(line["spans"][0]["id"], hostile);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        use std::time::{Duration, UNIX_EPOCH};
        let at = |seconds: u64, micros: u64| {
            let time = UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_micros(micros);
            rfc3339_micros(time).to_string()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(951_868_799, 999_999), "2000-02-29T23:59:59.999999Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000000Z");
        assert_eq!(at(1_796_083_199, 123_456), "2026-11-30T23:59:59.123456Z");
        assert_eq!(at(1_796_083_200, 0), "2026-12-01T00:00:00.000000Z");
        assert_eq!(at(253_402_300_799, 0), "9999-12-31T23:59:59.000000Z");
        // Every day of four centuries follows the day before it.
        let mut previous = civil_from_days(0);
        for days in 1..146_097 {
            let today = civil_from_days(days);
            let next_day = (previous.0, previous.1, previous.2 + 1);
            let next_month = (previous.0, previous.1 + 1, 1);
            let next_year = (previous.0 + 1, 1, 1);
            assert!(
                [next_day, next_month, next_year].contains(&today),
                "{days}: {previous:?} then {today:?}"
            );
            assert!((1..=12).contains(&today.1) && (1..=31).contains(&today.2));
            previous = today;
        }
        assert_eq!(previous, (2369, 12, 31));
    }

    #[test]
    fn non_finite_numbers_are_strings() {
        let lines = lines(|| tracing::info!(a = f64::NAN, b = f64::INFINITY, "x"));
        assert_eq!(lines[0]["fields"]["a"], "NaN");
        assert_eq!(lines[0]["fields"]["b"], "inf");
    }
}
