"""qgen-provenance/1 for the Python benches (the format is defined once, in harness/provenance.ts).

The host facts (commit, dirty, qgen version, source hash) come from a file written on the HOST, never from git on
the GPU machine: .device/provenance.json (`npm run gpu:bundle`) or the PROVENANCE.json that `qgen vendor` puts in a
package (commit + dirty only). This module adds the GPU/torch facts, the date and the exact command.

    from provenance import provenance, with_provenance
    p = provenance(sys.argv, package_dir=None)          # a dict
    json.dump(with_provenance(p, rows), f)              # {"provenance": p, "rows": rows}
    f.write(markdown_line(p) + '\\n' + table)            # first line <!-- qgen-provenance/1 {...} -->
"""
import datetime
import json
import os
import re
import subprocess

FORMAT = 'qgen-provenance/1'
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def host_facts(package_dir=None, explicit=None):
    """The host's record: explicit path, else .device/provenance.json of the repo, else PROVENANCE.json of the
    package. None when there is none (the result then says commit null, with a note)."""
    candidates = [explicit] if explicit else [os.path.join(REPO, '.device', 'provenance.json')]
    if package_dir and not explicit:
        candidates.append(os.path.join(package_dir, 'PROVENANCE.json'))
    for path in candidates:
        if path and os.path.isfile(path):
            with open(path) as f:
                return json.load(f), path
    return None, None


def _run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    except Exception:
        return ''


def provenance(argv, package_dir=None, host_file=None, note=None):
    host, source = host_facts(package_dir, host_file)
    p = {'format': FORMAT, 'commit': None, 'dirty': None, 'qgen_version': None, 'source_hash': None}
    if host:
        for k in ('commit', 'dirty', 'qgen_version', 'source_hash'):
            if k in host:
                p[k] = host[k]
    p.update({'gpu': None, 'sm_count': None, 'compute_capability': None, 'driver': None, 'cuda': None, 'nvcc': None,
              'torch': None})
    try:
        import torch
        p['torch'] = torch.__version__
        p['cuda'] = torch.version.cuda
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            p['gpu'] = props.name
            p['sm_count'] = props.multi_processor_count
            p['compute_capability'] = '%d.%d' % (props.major, props.minor)
    except ImportError:
        pass
    drv = _run(['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader']).strip().splitlines()
    p['driver'] = drv[0].strip() if drv else None
    m = re.search(r'release [\d.]+, V([\d.]+)', _run(['nvcc', '--version']))
    p['nvcc'] = m.group(1) if m else None
    p['date'] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds').replace('+00:00', 'Z')
    p['command'] = [str(x) for x in argv]
    p['recorded_at_run_time'] = True
    notes = [note] if note else []
    if source:
        notes.append('host facts from %s' % os.path.relpath(source, REPO) if source.startswith(REPO) else source)
    else:
        notes.append('no host provenance file (run npm run gpu:bundle on the host): commit unknown')
    p['note'] = '; '.join(notes)
    return p


def with_provenance(p, rows):
    return {'provenance': p, 'rows': rows}


def markdown_line(p):
    return '<!-- %s %s -->' % (FORMAT, json.dumps(p, separators=(',', ':')))


def text_line(p):
    return '# %s %s' % (FORMAT, json.dumps(p, separators=(',', ':')))


def run_stamp(p):
    """<date>-<HHMM>-<commit7>, the suffix of a run's file or folder name (same as the GPU harness's folders)."""
    d = p['date']
    return '%s-%s%s-%s' % (d[:10], d[11:13], d[14:16], (p['commit'] or 'nocommit')[:7])
