//! GeoIP and ASN from MaxMind DB files (GeoLite2/GeoIP2 City, Country, ASN, ISP, Enterprise,
//! Anonymous-IP, and the same format from DB-IP and other providers).
//!
//! Each file is decoded into one generic record (every layout's fields optional), so a
//! directory of mixed databases needs no configuration: the City file gives the place, the ASN
//! file the network owner, an Anonymous-IP file the TOR/VPN/hosting flags. The first file that
//! knows a part wins.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{Mmap, Reader};
use serde::Deserialize;
use tansa_event::{IpFlags, IpInfo};

use crate::IntelError;

/// Where GeoIP databases usually live (geoipupdate's and distributions' defaults).
pub const DEFAULT_DIRS: &[&str] = &[
    "/usr/share/GeoIP",
    "/var/lib/GeoIP",
    "/usr/local/share/GeoIP",
];

/// Opened MaxMind DB files.
pub struct GeoIp {
    dbs: Vec<(PathBuf, String, Reader<Mmap>)>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.dbs.iter().map(|(p, t, _)| (p, t)))
            .finish()
    }
}

#[derive(Deserialize, Default)]
struct Names<'a> {
    #[serde(borrow)]
    en: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Place<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
    #[serde(borrow)]
    code: Option<&'a str>,
    #[serde(borrow, default)]
    names: Names<'a>,
}

#[derive(Deserialize, Default)]
struct Location {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

#[derive(Deserialize, Default)]
struct Traits<'a> {
    autonomous_system_number: Option<u32>,
    #[serde(borrow)]
    autonomous_system_organization: Option<&'a str>,
    is_anonymous_vpn: Option<bool>,
    is_hosting_provider: Option<bool>,
    is_public_proxy: Option<bool>,
    is_tor_exit_node: Option<bool>,
}

/// The union of the layouts we read.
#[derive(Deserialize, Default)]
struct Record<'a> {
    #[serde(borrow)]
    continent: Option<Place<'a>>,
    #[serde(borrow)]
    country: Option<Place<'a>>,
    #[serde(borrow)]
    city: Option<Place<'a>>,
    #[serde(borrow)]
    subdivisions: Option<Vec<Place<'a>>>,
    location: Option<Location>,
    #[serde(borrow)]
    traits: Option<Traits<'a>>,
    // GeoLite2-ASN, GeoIP2-ISP
    autonomous_system_number: Option<u32>,
    #[serde(borrow)]
    autonomous_system_organization: Option<&'a str>,
    // GeoIP2-Anonymous-IP
    is_anonymous_vpn: Option<bool>,
    is_hosting_provider: Option<bool>,
    is_public_proxy: Option<bool>,
    is_tor_exit_node: Option<bool>,
}

fn set<T>(slot: &mut Option<T>, v: Option<T>) {
    if slot.is_none() {
        *slot = v;
    }
}

fn owned(s: Option<&str>) -> Option<Box<str>> {
    s.filter(|s| !s.is_empty()).map(Into::into)
}

impl Record<'_> {
    /// Adds what this record knows to `info` (parts already known stay).
    fn merge_into(self, info: &mut IpInfo) {
        if let Some(c) = self.continent {
            set(&mut info.continent_code, owned(c.code));
        }
        if let Some(c) = self.country {
            set(&mut info.country_iso_code, owned(c.iso_code));
            set(&mut info.country_name, owned(c.names.en));
        }
        if let Some(r) = self.subdivisions.as_ref().and_then(|s| s.first()) {
            set(&mut info.region_name, owned(r.names.en));
        }
        if let Some(c) = self.city {
            set(&mut info.city_name, owned(c.names.en));
        }
        if let Some(Location {
            latitude: Some(lat),
            longitude: Some(lon),
        }) = self.location
        {
            set(&mut info.location, Some((lat, lon)));
        }
        let t = self.traits.unwrap_or_default();
        set(
            &mut info.as_number,
            self.autonomous_system_number.or(t.autonomous_system_number),
        );
        set(
            &mut info.as_organization,
            owned(
                self.autonomous_system_organization
                    .or(t.autonomous_system_organization),
            ),
        );
        for (v, flag) in [
            (
                self.is_tor_exit_node.or(t.is_tor_exit_node),
                IpFlags::TOR_EXIT,
            ),
            (
                self.is_hosting_provider.or(t.is_hosting_provider),
                IpFlags::HOSTING,
            ),
            (
                self.is_anonymous_vpn.or(t.is_anonymous_vpn),
                IpFlags::ANONYMOUS_VPN,
            ),
            (
                self.is_public_proxy.or(t.is_public_proxy),
                IpFlags::PUBLIC_PROXY,
            ),
        ] {
            if v == Some(true) {
                info.flags.insert(flag);
            }
        }
    }
}

impl GeoIp {
    /// Opens the given files (a directory stands for the `.mmdb` files in it). A file that is
    /// not a readable MaxMind DB is an error naming it.
    pub fn open(paths: &[PathBuf]) -> Result<GeoIp, IntelError> {
        let mut dbs = Vec::new();
        for p in paths {
            for file in mmdb_files(p)? {
                dbs.push(open_one(&file)?);
            }
        }
        Ok(GeoIp { dbs })
    }

    /// The `.mmdb` files in the usual directories ([`DEFAULT_DIRS`]); files that fail to open
    /// are skipped with their error returned alongside.
    pub fn discover() -> (GeoIp, Vec<IntelError>) {
        let mut dbs = Vec::new();
        let mut errors = Vec::new();
        for d in DEFAULT_DIRS {
            let d = Path::new(d);
            if !d.is_dir() {
                continue;
            }
            match mmdb_files(d) {
                Ok(files) => {
                    for f in files {
                        match open_one(&f) {
                            Ok(db) => dbs.push(db),
                            Err(e) => errors.push(e),
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        (GeoIp { dbs }, errors)
    }

    pub fn is_empty(&self) -> bool {
        self.dbs.is_empty()
    }

    /// The opened files and their database types (`GeoLite2-City`, …).
    pub fn databases(&self) -> impl Iterator<Item = (&Path, &str)> {
        self.dbs.iter().map(|(p, t, _)| (p.as_path(), t.as_str()))
    }

    /// What the databases know about `ip` (nothing: an empty [`IpInfo`]). A record that does
    /// not decode (a corrupt file) is skipped: lookups never fail.
    pub fn lookup(&self, ip: IpAddr) -> IpInfo {
        let mut info = IpInfo::default();
        for (_, _, r) in &self.dbs {
            if let Ok(res) = r.lookup(ip) {
                if let Ok(Some(rec)) = res.decode::<Record>() {
                    rec.merge_into(&mut info);
                }
            }
        }
        info
    }

    /// Checks every file whole (search tree and data section): what `tansa geoip check` runs.
    pub fn verify(&self) -> Result<(), IntelError> {
        for (path, _, r) in &self.dbs {
            r.verify().map_err(|e| IntelError::GeoIp {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// Every network the databases attribute to `asn` (what an AS ban covers). IPv4 networks
    /// of an IPv6 database (`::a.b.c.d/n`, n ≥ 96) come back as IPv4.
    pub fn asn_prefixes(&self, asn: u32) -> Vec<ipnet::IpNet> {
        #[derive(Deserialize)]
        struct Asn {
            autonomous_system_number: Option<u32>,
        }
        let mut out = std::collections::BTreeSet::new();
        for (_, _, r) in &self.dbs {
            let Ok(it) = r.networks(Default::default()) else {
                continue;
            };
            for item in it.flatten() {
                let Ok(Some(rec)) = item.decode::<Asn>() else {
                    continue;
                };
                if rec.autonomous_system_number != Some(asn) {
                    continue;
                }
                let Ok(net) = item.network() else { continue };
                let net: ipnet::IpNet = match net.to_string().parse() {
                    Ok(n) => n,
                    Err(_) => continue,
                };
                out.insert(match net {
                    ipnet::IpNet::V6(v6)
                        if v6.prefix_len() >= 96 && v6.addr().segments()[..6] == [0; 6] =>
                    {
                        let o = v6.addr().octets();
                        ipnet::IpNet::V4(
                            ipnet::Ipv4Net::new(
                                std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15]),
                                v6.prefix_len() - 96,
                            )
                            .expect("length within 32"),
                        )
                    }
                    n => n,
                });
            }
        }
        out.into_iter().collect()
    }

    /// Like [`GeoIp::lookup`], but reports decoding errors.
    pub fn lookup_strict(&self, ip: IpAddr) -> Result<IpInfo, IntelError> {
        let mut info = IpInfo::default();
        for (path, _, r) in &self.dbs {
            let err = |e: maxminddb::MaxMindDbError| IntelError::GeoIp {
                path: path.clone(),
                reason: e.to_string(),
            };
            if let Some(rec) = r.lookup(ip).map_err(err)?.decode::<Record>().map_err(err)? {
                rec.merge_into(&mut info);
            }
        }
        Ok(info)
    }
}

fn mmdb_files(p: &Path) -> Result<Vec<PathBuf>, IntelError> {
    if !p.is_dir() {
        return Ok(vec![p.to_path_buf()]);
    }
    let rd = std::fs::read_dir(p).map_err(|e| IntelError::Io {
        path: p.to_path_buf(),
        source: e,
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| f.extension().is_some_and(|x| x == "mmdb"))
        .collect();
    files.sort();
    Ok(files)
}

fn open_one(path: &Path) -> Result<(PathBuf, String, Reader<Mmap>), IntelError> {
    let err = |reason: String| IntelError::GeoIp {
        path: path.to_path_buf(),
        reason,
    };
    if !path.is_file() {
        return Err(err("no such file".into()));
    }
    // SAFETY: the mapping is read-only and must not change under us. Database updaters
    // (geoipupdate, the DB-IP scripts) write a new file and rename it over the old one, which
    // leaves this mapping on the old inode; a file rewritten in place is not supported.
    let r = unsafe { Reader::open_mmap(path) }.map_err(|e| err(e.to_string()))?;
    // a file with a valid header can still have a broken tree or data section: check the
    // search tree's first record so that a truncated file fails here, not on every lookup
    if let Err(e) = r.lookup(IpAddr::from([1, 1, 1, 1])) {
        return Err(err(e.to_string()));
    }
    let t = r.metadata().database_type.clone();
    Ok((path.to_path_buf(), t, r))
}
