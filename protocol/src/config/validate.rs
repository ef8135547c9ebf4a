//! Validation of a parsed task: every field and the arithmetic between them.

use super::id::canonical_id;
use super::*;

impl TaskConfig {
    pub(super) fn validate(raw: RawTask) -> Result<Self, ConfigError> {
        if raw.name.is_empty() || raw.name.len() > 128 {
            return Err(ConfigError::invalid("name", "must be 1 to 128 characters"));
        }
        if raw.dimension == 0 || raw.dimension > MAX_DIMENSION {
            return Err(ConfigError::invalid(
                "dimension",
                format!("must be between 1 and {MAX_DIMENSION}"),
            ));
        }
        if !matches!(raw.bits, 8 | 16 | 32) {
            return Err(ConfigError::invalid("bits", "must be 8, 16 or 32"));
        }
        if !(raw.clip_norm.is_finite() && raw.clip_norm > 0.0) {
            return Err(ConfigError::invalid(
                "clip_norm",
                "must be a positive, finite number",
            ));
        }
        if raw.frac_bits > 40 {
            return Err(ConfigError::invalid("frac_bits", "must be at most 40"));
        }
        // The largest quantised coordinate: |x_i| ≤ C·2^f before rounding, and
        // randomised rounding moves it up by less than 1. Coordinates are encoded in
        // [−q/2, q/2), so ⌊C·2^f⌋ + 1 must stay below q/2.
        let q_half = 1u64 << (raw.bits - 1);
        // Multiplying by a power of two is exact in floating point.
        let record_clip = raw.clip_norm * 2f64.powi(i32::from(raw.frac_bits));
        validate_unit(&raw.privacy)?;
        // A report sums up to m clipped records (m = 1 at client level).
        let records = f64::from(raw.privacy.max_records_per_report.unwrap_or(1));
        let scaled_clip = record_clip * records;
        if scaled_clip.floor() + 1.0 >= q_half as f64 {
            return Err(ConfigError::invalid(
                "frac_bits",
                format!(
                    "m·C·2^f = {scaled_clip} does not fit in b = {} bits (needs < 2^{} − 1): \
                     lower frac_bits, clip_norm or max_records_per_report, or raise bits",
                    raw.bits,
                    raw.bits - 1
                ),
            ));
        }
        if let Some(sigma_client) = client_noise_sigma(&raw.privacy) {
            // Kairouz–Liu–Steinke 2021 (Theorem 1) bound the privacy of a sum of
            // discrete Gaussians for per-client σ ≥ 1/2 only.
            if sigma_client < 0.5 {
                return Err(ConfigError::invalid(
                    "privacy.sigma",
                    format!(
                        "client noise needs σ/√min_honest_clients ≥ 1/2 (KLS21, Theorem 1); \
                         it is {sigma_client:.3}: raise sigma or lower min_honest_clients"
                    ),
                ));
            }
            let reach = scaled_clip.floor() + 1.0 + NOISE_TAIL * sigma_client;
            if reach >= q_half as f64 {
                return Err(ConfigError::invalid(
                    "privacy.sigma",
                    format!(
                        "with client noise σ/√n_min = {sigma_client:.1}, coordinates reach \
                         ⌊C·2^f⌋ + 1 + {NOISE_TAIL}·σ_c = {reach:.0}, beyond b = {} bits: \
                         raise bits or min_honest_clients, or lower frac_bits",
                        raw.bits
                    ),
                ));
            }
        }
        let default_bound = default_norm_bound(scaled_clip, raw.dimension, &raw.privacy);
        let norm_bound = raw.norm_bound.unwrap_or(default_bound);
        if norm_bound == 0 {
            return Err(ConfigError::invalid("norm_bound", "must be positive"));
        }
        let n = raw.aggregators.len();
        if !(2..=MAX_AGGREGATORS).contains(&n) {
            return Err(ConfigError::invalid(
                "aggregators",
                format!("a task needs 2 to {MAX_AGGREGATORS} aggregators, found {n}"),
            ));
        }
        if raw.aggregators[0].role != Role::Leader
            || raw.aggregators[1..].iter().any(|a| a.role != Role::Helper)
        {
            return Err(ConfigError::invalid(
                "aggregators",
                "the first aggregator must be the leader and all others helpers",
            ));
        }
        if raw.min_clients == 0 || raw.max_clients < raw.min_clients {
            return Err(ConfigError::invalid(
                "min_clients",
                "need 1 ≤ min_clients ≤ max_clients",
            ));
        }
        if raw.round_duration_secs == 0 {
            return Err(ConfigError::invalid(
                "round_duration_secs",
                "must be positive",
            ));
        }
        let q = 1u128 << raw.bits;
        match raw.proof {
            ProofMode::CarryLift => {
                // DESIGN §5: every lifted coordinate X_i lies in (−n·q, n·q), so
                // ‖X‖² < d·(n·q)²; requiring that to be below p means the
                // field's sum of squares equals the integer one (no wrap-around).
                let bound = u128::from(raw.dimension) * (n as u128 * q) * (n as u128 * q);
                if bound >= FIELD64_MODULUS {
                    return Err(ConfigError::invalid(
                        "dimension",
                        format!(
                            "carry-lift needs d·(n·q)² < p; with d = {}, n = {n}, q = 2^{} \
                             it is {bound}, above p ≈ 1.8e19: lower bits or dimension",
                            raw.dimension, raw.bits
                        ),
                    ));
                }
                if u128::from(norm_bound) * u128::from(norm_bound) >= FIELD64_MODULUS {
                    return Err(ConfigError::invalid(
                        "norm_bound",
                        "B² must be below the field modulus",
                    ));
                }
            }
            ProofMode::None => {
                if raw.joint_rand_hash.is_some() {
                    return Err(ConfigError::invalid(
                        "joint_rand_hash",
                        "only the carry-lift proof has joint randomness: remove the key, \
                         or set proof = \"carry-lift\"",
                    ));
                }
                // DESIGN §5: without a proof the aggregators add shares mod 2^b, so the
                // whole noisy sum must fit: max_clients · max|x_i| plus the noise
                // tail (NOISE_TAIL·σ per aggregator that adds noise, and the clients'
                // noise inside max|x_i|) must stay below 2^(b−1).
                let sigma_client = client_noise_sigma(&raw.privacy).unwrap_or(0.0);
                let max_coord = (scaled_clip.floor() + 1.0 + NOISE_TAIL * sigma_client).ceil();
                let aggregator_noise = match raw.privacy.noise {
                    NoisePlacement::Aggregator | NoisePlacement::Both => {
                        NOISE_TAIL * raw.privacy.sigma.unwrap_or(0.0) * n as f64
                    }
                    _ => 0.0,
                };
                let reach = f64::from(raw.max_clients) * max_coord + aggregator_noise;
                if reach >= q_half as f64 {
                    return Err(ConfigError::invalid(
                        "max_clients",
                        format!(
                            "without a proof the noisy sum must fit in b = {} bits: \
                             max_clients · max|x_i| + {NOISE_TAIL}·σ·n_aggregators = {reach:.0} \
                             ≥ 2^{}: lower max_clients or frac_bits, or raise bits",
                            raw.bits,
                            raw.bits - 1
                        ),
                    ));
                }
            }
        }
        let mut aggregator_keys = Vec::with_capacity(n);
        let mut aggregator_fingerprints = Vec::with_capacity(n);
        for a in &raw.aggregators {
            if a.replica_endpoints.len() > MAX_REPLICA_ENDPOINTS {
                return Err(ConfigError::invalid(
                    "aggregators.replica_endpoints",
                    format!(
                        "at most {MAX_REPLICA_ENDPOINTS} replica endpoints per aggregator, found {}",
                        a.replica_endpoints.len()
                    ),
                ));
            }
            // A peer binds one socket for all of an aggregator's endpoints, of the
            // first endpoint's family: the others must be reachable from it.
            if a.replica_endpoints
                .iter()
                .any(|e| e.is_ipv4() != a.endpoint.is_ipv4())
            {
                return Err(ConfigError::invalid(
                    "aggregators.replica_endpoints",
                    "must all be IPv4 or all IPv6, like the aggregator's endpoint",
                ));
            }
            aggregator_keys.push(HpkePublicKey::from_hex(&a.hpke_public_key).map_err(|_| {
                ConfigError::invalid(
                    "aggregators.hpke_public_key",
                    "must be 64 hex digits of an X25519 public key",
                )
            })?);
            let mut fp = [0u8; 32];
            hex::decode_to_slice(a.tls_cert_sha256.trim(), &mut fp).map_err(|_| {
                ConfigError::invalid(
                    "aggregators.tls_cert_sha256",
                    "must be 64 hex digits (SHA-256 of the DER certificate)",
                )
            })?;
            aggregator_fingerprints.push(fp);
        }
        let collector_key =
            HpkePublicKey::from_hex(&raw.collector.hpke_public_key).map_err(|_| {
                ConfigError::invalid(
                    "collector.hpke_public_key",
                    "must be 64 hex digits of an X25519 public key",
                )
            })?;
        validate_privacy(&raw.privacy, raw.min_clients)?;
        let id = canonical_id(&raw, norm_bound, &aggregator_fingerprints);
        let task = Self {
            raw,
            norm_bound,
            aggregator_keys,
            aggregator_fingerprints,
            collector_key,
            id,
        };
        Ok(task)
    }
}

fn default_norm_bound(scaled_clip: f64, dimension: u32, privacy: &PrivacyConfig) -> u64 {
    let sqrt_d = f64::from(dimension).sqrt();
    let mut bound = scaled_clip + sqrt_d;
    if let Some(sigma_client) = client_noise_sigma(privacy) {
        bound += NOISE_TAIL * sigma_client * sqrt_d;
    }
    bound.ceil() as u64
}

/// The record-level settings: present and in range with `unit = "record"`, absent
/// otherwise.
fn validate_unit(p: &PrivacyConfig) -> Result<(), ConfigError> {
    match p.unit {
        PrivacyUnit::Client => {
            if p.sampling_rate.is_some() || p.max_records_per_report.is_some() {
                return Err(ConfigError::invalid(
                    "privacy.sampling_rate",
                    "sampling_rate and max_records_per_report are only for unit = \"record\"",
                ));
            }
            Ok(())
        }
        PrivacyUnit::Record => {
            match p.sampling_rate {
                Some(q) if q > 0.0 && q <= 1.0 => {}
                Some(q) => {
                    return Err(ConfigError::invalid(
                        "privacy.sampling_rate",
                        format!("must be in (0, 1], got {q}"),
                    ));
                }
                None => {
                    return Err(ConfigError::invalid(
                        "privacy.sampling_rate",
                        "unit = \"record\" needs sampling_rate (in (0, 1])",
                    ));
                }
            }
            match p.max_records_per_report {
                Some(m) if m >= 1 => {}
                _ => {
                    return Err(ConfigError::invalid(
                        "privacy.max_records_per_report",
                        "unit = \"record\" needs max_records_per_report ≥ 1",
                    ));
                }
            }
            Ok(())
        }
    }
}

fn validate_privacy(p: &PrivacyConfig, min_clients: u32) -> Result<(), ConfigError> {
    if p.noise == NoisePlacement::None {
        if p.sigma.is_some() || p.min_honest_clients.is_some() {
            return Err(ConfigError::invalid(
                "privacy",
                "noise = \"none\" takes no sigma or min_honest_clients",
            ));
        }
        return Ok(());
    }
    match p.sigma {
        Some(s) if s.is_finite() && s > 0.0 => {}
        _ => {
            return Err(ConfigError::invalid(
                "privacy.sigma",
                "must be a positive, finite number",
            ));
        }
    }
    match p.epsilon {
        Some(e) if e.is_finite() && e > 0.0 => {}
        _ => {
            return Err(ConfigError::invalid(
                "privacy.epsilon",
                "must be a positive, finite number",
            ));
        }
    }
    match p.delta {
        Some(d) if d > 0.0 && d < 1.0 => {}
        _ => {
            return Err(ConfigError::invalid(
                "privacy.delta",
                "must lie strictly between 0 and 1",
            ));
        }
    }
    let needs_clients = matches!(p.noise, NoisePlacement::Client | NoisePlacement::Both);
    match (needs_clients, p.min_honest_clients) {
        (true, Some(k)) if k >= 1 && k <= min_clients => Ok(()),
        (true, _) => Err(ConfigError::invalid(
            "privacy.min_honest_clients",
            "client noise needs 1 ≤ min_honest_clients ≤ min_clients",
        )),
        (false, Some(_)) => Err(ConfigError::invalid(
            "privacy.min_honest_clients",
            "only meaningful with noise = \"client\" or \"both\"",
        )),
        (false, None) => Ok(()),
    }
}
