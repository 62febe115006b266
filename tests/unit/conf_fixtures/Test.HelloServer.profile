# Private profile of Test.HelloServer (t_server_conf.profile): what this one server adds to
# its template, tars.tarspython.default. Private values win over the template's.
<tars>
  <application>
    <server>
      netthread = 1
      closecout = 0
      hearttimeout = 45000
      enableworking = y
      packageFormat = tgz
      # '=' inside a value is escaped
      env = PYTHONPATH\=/usr/local/app/lib;LANG\=C.UTF-8
    </server>
    <client>
      sample-rate = 100000
      max-sample-count = 50
      sendthread = 1
      recvthread = 1
      netthread = 1
      keep-alive-interval = 10000
    </client>
  </application>
</tars>
