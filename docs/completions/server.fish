complete -c server -l config -d 'The configuration file' -r -F
complete -c server -l listen -d 'Listen address, in place of `listen` and every `[[listeners]]` table in the file, TLS ones too (e.g. 127.0.0.1:8080; port 0 picks one; https://ADDR for TLS with a certificate made in memory)' -r
complete -c server -l root -d 'Document root, overriding `root` in the file' -r -F
complete -c server -l pid-file -d 'Write the master\'s process id to this file (overrides `pid_file`)' -r -F
complete -c server -l log-level -d 'Log level of the error log (stderr)' -r -f -a "off\t''
error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c server -l check-config -d 'Load and validate the configuration and every plugin, print the chain, and exit 0 or 1'
complete -c server -l single-process -d 'Serve from this one process, without a master or worker processes (for debugging)'
complete -c server -s h -l help -d 'Print help'
complete -c server -s V -l version -d 'Print version'
